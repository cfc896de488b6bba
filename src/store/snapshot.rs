//! The start-up snapshot's file: every hosted zone with its record sets, written at a clean
//! shutdown so that the next start need not scan sled (a scan of a million record sets took
//! ~0.9 s and left ~130 MB resident).
//!
//! This file knows the format and how to write, read and remove it durably; whether a file may
//! be used (its token against sled's) and kept is [`super::SledStore`]'s business. It never
//! decides that a snapshot is valid beyond its own framing and checksum.
//!
//! Layout, integers big-endian:
//!
//! ```text
//! magic "r53snap\n" (8) | format u32 | schema version u32 | token u64 | zone count u32
//! per zone: zone length u32 | codec::encode_zone | set count u64 | sets length u64 | EncodedSets
//! crc32 (IEEE, crc32fast) of every byte before it
//! ```

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::{codec, EncodedSets, StoreError, StoredZone, SCHEMA_VERSION};

/// The snapshot's name in the data dir (beside sled's files, as the schema file is).
pub(crate) const FILE: &str = "r53-snapshot";
/// Where it is written before the rename that makes it appear whole.
pub(crate) const TMP: &str = "r53-snapshot.tmp";
const MAGIC: &[u8; 8] = b"r53snap\n";
/// This layout's version: a file of another is ignored.
const FORMAT: u32 = 1;
/// What the reader and the writer buffer at a time.
const BUFFER: usize = 1 << 20;

/// A snapshot read back and checked: the token it was written with and its zones.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub token: u64,
    pub zones: Vec<StoredZone>,
}

pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("start-up snapshot: {what}"))
}

/// Counts and checksums what goes through it.
struct Crc<T> {
    inner: T,
    hasher: crc32fast::Hasher,
    bytes: u64,
}

impl<T> Crc<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            hasher: crc32fast::Hasher::new(),
            bytes: 0,
        }
    }
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Crc<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Writes `count` zones under `token` as `dir`'s snapshot, durably: a temporary file, fsync,
/// rename, fsync of the dir. Returns the file's size. A failure (of the disk, of a zone that
/// cannot be encoded, or `zones` not holding `count`) leaves no temporary file behind (when it
/// can be removed) and any earlier snapshot as it was. `zones` is taken one at a time, so only
/// one zone's encoding is held at once beside the zone indexes it comes from.
pub(crate) fn write(
    dir: &Path,
    token: u64,
    count: usize,
    zones: &mut dyn Iterator<Item = Result<StoredZone, StoreError>>,
) -> io::Result<u64> {
    let tmp = dir.join(TMP);
    let written = write_file(&tmp, token, count, zones).and_then(|size| {
        std::fs::rename(&tmp, path(dir))?;
        sync_dir(dir)?;
        Ok(size)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn write_file(
    tmp: &Path,
    token: u64,
    count: usize,
    zones: &mut dyn Iterator<Item = Result<StoredZone, StoreError>>,
) -> io::Result<u64> {
    let mut out = Crc::new(BufWriter::with_capacity(BUFFER, File::create(tmp)?));
    out.write_all(MAGIC)?;
    out.write_all(&FORMAT.to_be_bytes())?;
    out.write_all(&SCHEMA_VERSION.to_be_bytes())?;
    out.write_all(&token.to_be_bytes())?;
    out.write_all(&u32::try_from(count).map_err(too_large)?.to_be_bytes())?;
    let mut written = 0;
    for stored in zones {
        let stored = stored.map_err(io::Error::other)?;
        written += 1;
        let zone = codec::encode_zone(&stored.zone);
        out.write_all(&u32::try_from(zone.len()).map_err(too_large)?.to_be_bytes())?;
        out.write_all(&zone)?;
        let sets = stored.rrsets.as_bytes();
        out.write_all(&(stored.rrsets.len() as u64).to_be_bytes())?;
        out.write_all(&(sets.len() as u64).to_be_bytes())?;
        out.write_all(sets)?;
    }
    if written != count {
        return Err(io::Error::other(format!(
            "{written} zones given for a snapshot of {count}"
        )));
    }
    let crc = out.hasher.clone().finalize();
    out.write_all(&crc.to_be_bytes())?;
    let size = out.bytes;
    let file = out.inner.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(size)
}

fn too_large(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

/// Reads and checks `dir`'s snapshot: `Ok(None)` when there is none. Every length is checked
/// against what is left of the file before anything is allocated for it, so a damaged length
/// cannot ask for more memory than the file's size.
pub(crate) fn read(dir: &Path) -> Result<Option<Snapshot>, StoreError> {
    let path = path(dir);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::Engine(format!("{}: {e}", path.display()))),
    };
    let size = file
        .metadata()
        .map_err(|e| StoreError::Engine(format!("{}: {e}", path.display())))?
        .len();
    let mut input = Reader {
        inner: Crc::new(BufReader::with_capacity(BUFFER, file)),
        // The checksum's four bytes are not part of what it covers.
        left: size
            .checked_sub(4)
            .ok_or_else(|| corrupt("shorter than a checksum"))?,
    };
    if input.array::<8>()? != *MAGIC {
        return Err(corrupt("not a snapshot file"));
    }
    let format = input.u32()?;
    if format != FORMAT {
        return Err(corrupt(format!("format {format}, this r53 reads {FORMAT}")));
    }
    let schema = input.u32()?;
    if schema != SCHEMA_VERSION {
        return Err(corrupt(format!(
            "schema version {schema}, this r53 reads {SCHEMA_VERSION}"
        )));
    }
    let token = input.u64()?;
    let count = input.u32()?;
    let mut zones = Vec::new();
    for _ in 0..count {
        let len = input.u32()?;
        let zone = codec::decode_zone(&input.bytes(u64::from(len))?)?;
        let sets_count = input.u64()?;
        let len = input.u64()?;
        let rrsets = EncodedSets::from_bytes(input.bytes(len)?)?;
        if rrsets.len() as u64 != sets_count {
            return Err(corrupt(format!(
                "zone {} holds {} record sets, its header says {sets_count}",
                zone.id,
                rrsets.len()
            )));
        }
        zones.push(StoredZone { zone, rrsets });
    }
    if input.left != 0 {
        return Err(corrupt("bytes after the last zone"));
    }
    let computed = input.inner.hasher.clone().finalize();
    let mut stored = [0u8; 4];
    input.inner.inner.read_exact(&mut stored).map_err(corrupt)?;
    if u32::from_be_bytes(stored) != computed {
        return Err(corrupt("checksum mismatch"));
    }
    Ok(Some(Snapshot { token, zones }))
}

/// Reads the checked part of a snapshot, never past it.
struct Reader<R> {
    inner: Crc<R>,
    left: u64,
}

impl<R: Read> Reader<R> {
    fn bytes(&mut self, len: u64) -> Result<Vec<u8>, StoreError> {
        if len > self.left {
            return Err(corrupt("cut short"));
        }
        self.left -= len;
        // Read into spare capacity rather than zeroed memory: this is most of the file.
        let mut out = Vec::with_capacity(len as usize);
        (&mut self.inner)
            .take(len)
            .read_to_end(&mut out)
            .map_err(corrupt)?;
        if out.len() as u64 != len {
            return Err(corrupt("cut short"));
        }
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        if (N as u64) > self.left {
            return Err(corrupt("cut short"));
        }
        self.left -= N as u64;
        let mut out = [0; N];
        self.inner.read_exact(&mut out).map_err(corrupt)?;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        self.array().map(u64::from_be_bytes)
    }
}

/// Removes `dir`'s snapshot and any temporary file a cut-short write left, and makes the
/// removal durable (fsync of the dir) when there was something to remove.
pub(crate) fn remove(dir: &Path) -> io::Result<()> {
    remove_files(dir, &[FILE, TMP])
}

/// Removes only the temporary file a cut-short write left, if any (durably, as [`remove`]):
/// for a start that keeps the snapshot itself.
pub(crate) fn remove_tmp(dir: &Path) -> io::Result<()> {
    remove_files(dir, &[TMP])
}

fn remove_files(dir: &Path, names: &[&str]) -> io::Result<()> {
    let mut removed = false;
    for name in names {
        match std::fs::remove_file(dir.join(name)) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
