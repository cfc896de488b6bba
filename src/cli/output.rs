//! Printing: aligned tables for people, and the API's JSON indented as the aws CLI indents it.

use std::fmt::Write as _;
use std::io::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::CliError;

/// Columns padded to their widest cell; the last column is not padded, so lines carry no
/// trailing blanks.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(columns) {
                if i + 1 == columns {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Writes to stdout; a closed pipe (`r53 record list … | head`) is not an error worth a
/// message, so it ends quietly.
pub fn print(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::Unexpected(format!("writing to stdout: {e}"))),
    }
}

/// JSON with four-space indentation and a final newline, as `aws … --output json` prints.
pub fn json_text(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serializing a Value into memory cannot fail: its keys are strings.
    if value.serialize(&mut serializer).is_err() {
        return format!("{value}\n");
    }
    let mut text = String::from_utf8_lossy(&out).into_owned();
    text.push('\n');
    text
}

/// A name as people write it: Route 53 escapes a leading `*` as `\052`.
pub fn display_name(route53: &str) -> String {
    route53.replace("\\052", "*")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_without_trailing_blanks() {
        let mut t = Table::new(&["ID", "NAME", "COMMENT"]);
        t.row(vec!["Z1".into(), "example.com.".into(), String::new()]);
        t.row(vec!["Z22222".into(), "a.".into(), "hi".into()]);
        assert_eq!(
            t.render(),
            "ID      NAME          COMMENT\nZ1      example.com.\nZ22222  a.            hi\n"
        );
    }

    #[test]
    fn json_is_indented_by_four() {
        assert_eq!(
            json_text(&json!({"A": [1]})),
            "{\n    \"A\": [\n        1\n    ]\n}\n"
        );
    }
}
