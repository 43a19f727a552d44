//! Reading a whole session file in as few calls as possible.

use super::raw::RawFile;

/// What one read asks for: wasmtime's cap on a read.
const READ_CHUNK: usize = 64 * 1024;
/// What the first read of a file asks for: a session of a few keys (three
/// or four pages), so that one call gets all of it. Not more: the host
/// allocates and zeroes what is asked for, whatever the file's size, and
/// the header read here says exactly how much more a larger file needs.
const FIRST_READ: usize = 16 * 1024;

/// The whole file. A read may return less than asked before the end (see
/// `RawFile::read_at`), and asking until a read comes back empty would cost
/// every load a second call, so the database header says how long the file
/// is: its page size times the page count it records (valid when the two
/// change counters in it agree, as SQLite itself checks). Without a valid
/// header, read until a read is empty.
pub(super) fn read_image(file: &RawFile) -> std::io::Result<Vec<u8>> {
    let mut image = file.read_at(FIRST_READ, 0)?;
    let expected = recorded_size(&image);
    if let Some(n) = expected {
        // One allocation of the right size, rather than doubling (and
        // holding the old buffer and the new at once) as the reads come in.
        image.reserve_exact(n.saturating_sub(image.len()));
    }
    while expected.is_none_or(|n| image.len() < n) {
        let want = expected.map_or(READ_CHUNK, |n| n - image.len());
        let more = file.read_at(want, image.len() as u64)?;
        if more.is_empty() {
            break;
        }
        image.extend_from_slice(&more);
    }
    Ok(image)
}

/// The file size a SQLite database header records, if it records one.
fn recorded_size(header: &[u8]) -> Option<usize> {
    let be32 = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(header.get(at..at + 4)?.try_into().ok()?))
    };
    let raw_page_size = u16::from_be_bytes(header.get(16..18)?.try_into().ok()?);
    let page_size = match raw_page_size {
        1 => 65536,
        n if n >= 512 && n.is_power_of_two() => usize::from(n),
        _ => return None,
    };
    let (change_counter, valid_for, pages) = (be32(24)?, be32(92)?, be32(28)?);
    (change_counter == valid_for && pages > 0).then(|| page_size * pages as usize)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::vfs::fs::raw::OpenMode;

    /// A database header recording `pages` pages of `page_size` bytes.
    pub(crate) fn header(page_size: u16, pages: u32, counter: u32, valid_for: u32) -> Vec<u8> {
        let mut h = vec![0u8; 100];
        h[16..18].copy_from_slice(&page_size.to_be_bytes());
        h[24..28].copy_from_slice(&counter.to_be_bytes());
        h[28..32].copy_from_slice(&pages.to_be_bytes());
        h[92..96].copy_from_slice(&valid_for.to_be_bytes());
        h
    }

    #[test]
    fn the_recorded_size_is_trusted_only_when_valid() {
        assert_eq!(recorded_size(&header(4096, 3, 7, 7)), Some(12288));
        // page size 1 means 65536
        assert_eq!(recorded_size(&header(1, 2, 7, 7)), Some(131072));
        // stale header (change counters differ), bad page size, no pages,
        // too short to be a header
        assert_eq!(recorded_size(&header(4096, 3, 7, 6)), None);
        assert_eq!(recorded_size(&header(1000, 3, 7, 7)), None);
        assert_eq!(recorded_size(&header(4096, 0, 7, 7)), None);
        assert_eq!(recorded_size(&[0u8; 50]), None);
    }

    #[test]
    fn read_image_reads_files_larger_than_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        for (name, len) in [
            ("small", 12288usize),
            ("the first read exactly", FIRST_READ),
            ("one page past the first read", FIRST_READ + 4096),
            ("big", 5 * READ_CHUNK + 4096),
        ] {
            let path = dir.join(name);
            let pages = (len / 4096) as u32;
            let mut bytes = header(4096, pages, 1, 1);
            bytes.extend((100..len).map(|i| (i % 251) as u8));
            std::fs::write(&path, &bytes).unwrap();
            let file = RawFile::open(path.to_str().unwrap(), OpenMode::ReadOnly).unwrap();
            assert_eq!(read_image(&file).unwrap(), bytes, "{name}");
        }
        // A file that is not a database: read until a read comes back empty.
        let path = dir.join("foreign");
        let bytes: Vec<u8> = (0..3 * READ_CHUNK + 17).map(|i| (i % 7) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let file = RawFile::open(path.to_str().unwrap(), OpenMode::ReadOnly).unwrap();
        assert_eq!(read_image(&file).unwrap(), bytes);
    }
}
