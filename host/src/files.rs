//! Reading a bundle's files: regular files only, never through a link,
//! never blocking, never more than a cap.
//!
//! A policies directory is written by someone else. A file there may be a
//! symbolic link to a secret or to `/dev/zero`, a FIFO that never delivers,
//! or a sparse file of gigabytes; none of these may hang the host, grow its
//! memory, or get its contents into an error message.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, FileProblem};

/// Reads `path` whole if it is a regular file of at most `cap` bytes.
pub(crate) fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, Error> {
    let file = open_no_follow(path)?;
    let metadata = file.metadata().map_err(|source| Error::io(path, source))?;
    if !metadata.is_file() {
        return Err(Error::file(path, FileProblem::NotRegular));
    }
    if metadata.len() > cap {
        return Err(Error::file(path, FileProblem::TooLarge { size: metadata.len(), cap }));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // The file may grow while it is read: never take more than the cap.
    file.take(cap + 1).read_to_end(&mut bytes).map_err(|source| Error::io(path, source))?;
    if bytes.len() as u64 > cap {
        return Err(Error::file(path, FileProblem::TooLarge { size: bytes.len() as u64, cap }));
    }
    Ok(bytes)
}

/// Opens `path` for reading without following a final symbolic link and
/// without waiting on a FIFO or device.
#[cfg(unix)]
fn open_no_follow(path: &Path) -> Result<File, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) => Error::file(path, FileProblem::Link),
            _ => Error::io(path, source),
        })
}

#[cfg(not(unix))]
fn open_no_follow(path: &Path) -> Result<File, Error> {
    let metadata = std::fs::symlink_metadata(path).map_err(|source| Error::io(path, source))?;
    if metadata.file_type().is_symlink() {
        return Err(Error::file(path, FileProblem::Link));
    }
    File::open(path).map_err(|source| Error::io(path, source))
}

/// Whether `path` is a directory itself, not a link to one.
pub(crate) fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|metadata| metadata.is_dir())
}
