//! Splits master-file text into entries (one record or directive each) made of tokens, and
//! remembers the line every token starts on (RFC 1035 §5.1).
//!
//! Handles what is common to every entry: blanks, `;` comments, `( )` spanning lines, `"`
//! quoting (which may also span lines) and `\` escapes, which it keeps as written for the
//! field parsers to decode. It does not interpret tokens.

use super::Problem;

/// One field as written, with its quotes removed and its escapes kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub text: String,
    /// Whether any part of it was inside `"`: a quoted `@` or `\#` is plain text.
    pub quoted: bool,
    pub line: usize,
}

/// A logical line: a directive or a record, possibly continued over lines by parentheses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    /// The line of the first token.
    pub line: usize,
    /// The entry started with a blank, so its record belongs to the previous owner.
    pub inherits_owner: bool,
    pub tokens: Vec<Token>,
}

#[derive(Default)]
struct EntryBuilder {
    inherits_owner: Option<bool>,
    tokens: Vec<Token>,
    token: Option<Token>,
}

impl EntryBuilder {
    /// The token being read, started on `line` if there is none yet.
    fn token(&mut self, line: usize) -> &mut Token {
        self.token.get_or_insert_with(|| Token {
            text: String::new(),
            quoted: false,
            line,
        })
    }

    fn push_char(&mut self, c: char, line: usize) {
        self.token(line).text.push(c);
    }

    fn end_token(&mut self) {
        self.tokens.extend(self.token.take());
    }

    fn finish(mut self, entries: &mut Vec<Entry>) {
        self.end_token();
        if let Some(first) = self.tokens.first() {
            entries.push(Entry {
                line: first.line,
                inherits_owner: self.inherits_owner.unwrap_or(false),
                tokens: self.tokens,
            });
        }
    }
}

pub(super) fn entries(text: &str) -> Result<Vec<Entry>, Problem> {
    let mut entries = Vec::new();
    let mut entry = EntryBuilder::default();
    let mut line = 1;
    let mut open_paren: Option<usize> = None;
    let mut open_quote: Option<usize> = None;
    let mut chars = text.chars();

    while let Some(c) = chars.next() {
        if entry.inherits_owner.is_none() && open_paren.is_none() {
            entry.inherits_owner = Some(c == ' ' || c == '\t');
        }
        if open_quote.is_some() {
            match c {
                '"' => open_quote = None,
                '\\' => {
                    entry.push_char(c, line);
                    if let Some(escaped) = chars.next() {
                        if escaped == '\n' {
                            line += 1;
                        }
                        entry.push_char(escaped, line);
                    }
                }
                _ => {
                    if c == '\n' {
                        line += 1;
                    }
                    entry.push_char(c, line);
                }
            }
            continue;
        }
        match c {
            '\n' => {
                entry.end_token();
                if open_paren.is_none() {
                    std::mem::take(&mut entry).finish(&mut entries);
                }
                line += 1;
            }
            ' ' | '\t' | '\r' => entry.end_token(),
            ';' => {
                entry.end_token();
                // Skip the comment; the newline that ends it still ends the entry.
                let rest = chars.as_str();
                let end = rest.find('\n').unwrap_or(rest.len());
                chars = rest[end..].chars();
            }
            '(' => {
                entry.end_token();
                if open_paren.is_some() {
                    return Err(Problem::new(line, "nested parentheses"));
                }
                open_paren = Some(line);
            }
            ')' => {
                entry.end_token();
                if open_paren.take().is_none() {
                    return Err(Problem::new(line, "')' without a matching '('"));
                }
            }
            '"' => {
                entry.token(line).quoted = true;
                open_quote = Some(line);
            }
            '\\' => {
                entry.push_char(c, line);
                match chars.next() {
                    Some('\n') | None => {
                        return Err(Problem::new(line, "backslash at the end of a line"));
                    }
                    Some(escaped) => entry.push_char(escaped, line),
                }
            }
            _ => entry.push_char(c, line),
        }
    }
    if let Some(opened) = open_quote {
        return Err(Problem::new(opened, "quoted string is never closed"));
    }
    if let Some(opened) = open_paren {
        return Err(Problem::new(opened, "'(' is never closed"));
    }
    entry.finish(&mut entries);
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(entry: &Entry) -> Vec<&str> {
        entry.tokens.iter().map(|t| t.text.as_str()).collect()
    }

    #[test]
    fn entries_split_on_lines_and_skip_blanks_and_comments() {
        let entries = entries("a A 1.2.3.4 ; one\n\n  ; only a comment\n\tTXT x\n").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(texts(&entries[0]), ["a", "A", "1.2.3.4"]);
        assert!(!entries[0].inherits_owner);
        assert_eq!(entries[1].line, 4);
        assert!(entries[1].inherits_owner);
        assert_eq!(texts(&entries[1]), ["TXT", "x"]);
    }

    #[test]
    fn parentheses_join_lines_and_tokens_keep_their_own_line() {
        let text = "@ SOA ns1 host (\n  1 ; serial\n  2 3 4\n  5 )\nwww A 192.0.2.1";
        let entries = entries(text).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            texts(&entries[0]),
            ["@", "SOA", "ns1", "host", "1", "2", "3", "4", "5"]
        );
        let lines: Vec<usize> = entries[0].tokens.iter().map(|t| t.line).collect();
        assert_eq!(lines, [1, 1, 1, 1, 2, 3, 3, 3, 4]);
        assert_eq!(entries[1].line, 5);
    }

    #[test]
    fn quotes_protect_blanks_semicolons_parentheses_and_newlines() {
        let entries = entries("t TXT \"a b; (c)\" \"x\ny\" \"\" ( \"in parens\" )\nn A 1").unwrap();
        assert_eq!(
            texts(&entries[0]),
            ["t", "TXT", "a b; (c)", "x\ny", "", "in parens"]
        );
        assert!(entries[0].tokens[2].quoted);
        assert!(!entries[0].tokens[1].quoted);
        assert_eq!(entries[1].line, 3);
    }

    #[test]
    fn escapes_are_kept_for_the_field_parsers() {
        let entries = entries(r#"t TXT "a\"b\\" c\;d\ e \065"#).unwrap();
        assert_eq!(
            texts(&entries[0]),
            ["t", "TXT", r#"a\"b\\"#, r"c\;d\ e", r"\065"]
        );
    }

    #[test]
    fn a_quote_inside_a_token_quotes_the_rest_of_the_value() {
        let entries = entries(r#"s SVCB 1 . alpn="h2, h3" port=443"#).unwrap();
        assert_eq!(
            texts(&entries[0]),
            ["s", "SVCB", "1", ".", "alpn=h2, h3", "port=443"]
        );
    }

    #[test]
    fn unbalanced_quotes_and_parentheses_name_their_line() {
        let unclosed_quote = entries("a A 1\nb TXT \"oops\nc A 2\n").unwrap_err();
        assert_eq!(
            (unclosed_quote.line, unclosed_quote.message.as_str()),
            (2, "quoted string is never closed")
        );
        let unclosed_paren = entries("a A 1\n\nb SOA ( 1 2\n").unwrap_err();
        assert_eq!(unclosed_paren.line, 3);
        let stray = entries("a A 1\nb A 2 )\n").unwrap_err();
        assert_eq!(stray.line, 2);
        let nested = entries("a SOA ( (\n").unwrap_err();
        assert_eq!(nested.line, 1);
    }

    #[test]
    fn crlf_line_endings_are_plain_line_ends() {
        let entries = entries("a A 1\r\n\r\n A 2\r\n").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(texts(&entries[0]), ["a", "A", "1"]);
        assert_eq!(texts(&entries[1]), ["A", "2"]);
        assert!(entries[1].inherits_owner);
        assert_eq!(entries[1].line, 3);
    }
}
