//! Every file Flowgate reads or creates goes through this module: the
//! host's (policies, caches, archives, trust and key files) and the
//! decision log's, so there is one of each mechanism.
//!
//! It lives in the log crate, below the host, because the log's storage
//! and a regulator's verifying tool (which links this crate alone) need the
//! same care as the host; the host's `fs` module re-exports it.
//!
//! The directories Flowgate reads are written by someone else. A file there may be a
//! symbolic link to a secret or to `/dev/zero`, a FIFO that never delivers,
//! or a sparse file of gigabytes; none of these may hang the host, grow its
//! memory, or get its contents into an error message. And what the host
//! writes must never land where a planted link points, nor be seen half
//! written. So, in one place:
//!
//! - reads open without following a final link and without blocking, take
//!   regular files only, and never more than a cap ([`read_capped`]);
//! - files are created exclusively, never through a link, with the mode
//!   asked for ([`create_new`], [`write_new`]), and replaced by writing a
//!   fresh temporary file and renaming it into place ([`replace`]);
//! - directories are created private and checked to be directories, not
//!   links to one ([`create_private_dir`], [`is_real_dir`]);
//! - what must be private (secret keys, the cache, kept records) is
//!   checked for its owner and mode ([`check_private`]);
//! - one process at a time writes a directory ([`lock_exclusive`]), and
//!   files already open are read and written at offsets ([`read_exact_at`],
//!   [`write_all_at`]);
//! - the few files an operator hands the host by path (trust and token
//!   files) may be reached through links, as Kubernetes delivers
//!   ConfigMaps and Secrets, but the file a link leads to is checked as
//!   opened: a regular file, its owner the host's user or root, writable by
//!   no one else, and for a secret readable by no one else
//!   ([`read_through_links`]).
//!
//! Only this module touches `std::os::unix`; elsewhere the same calls
//! compile, with the checks a platform allows.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Why a file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The operating system refused an operation.
    #[error("cannot {action} `{path}`")]
    Io {
        /// What was being done.
        action: FileAction,
        /// The file or directory.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// The file is not one Flowgate will use.
    #[error("`{path}` {problem}")]
    Refused {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: FileProblem,
    },
}

impl FileError {
    /// An operation on `path` failed.
    pub fn io(action: FileAction, path: impl Into<PathBuf>, source: std::io::Error) -> FileError {
        FileError::Io { action, path: path.into(), source }
    }

    /// `path` is refused for `problem`.
    pub fn refused(path: impl Into<PathBuf>, problem: FileProblem) -> FileError {
        FileError::Refused { path: path.into(), problem }
    }

    /// Whether the file simply does not exist (as opposed to being unusable).
    pub fn is_not_found(&self) -> bool {
        matches!(self, FileError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    /// The file or directory concerned.
    pub fn path(&self) -> &Path {
        match self {
            FileError::Io { path, .. } | FileError::Refused { path, .. } => path,
        }
    }
}

/// What was being done to a file when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileAction {
    /// Reading it (or its metadata).
    Read,
    /// Listing a directory.
    List,
    /// Creating it.
    Create,
    /// Writing or syncing it.
    Write,
    /// Renaming it into place.
    Rename,
    /// Taking its lock.
    Lock,
    /// Watching it for changes.
    Watch,
}

impl fmt::Display for FileAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileAction::Read => "read",
            FileAction::List => "list",
            FileAction::Create => "create",
            FileAction::Write => "write",
            FileAction::Rename => "rename into place",
            FileAction::Lock => "lock",
            FileAction::Watch => "watch",
        })
    }
}

/// Why a file was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileProblem {
    /// It is a symbolic link, and is read or written only as itself.
    #[error("is a symbolic link, which is never followed: the file itself must be here")]
    Link,
    /// It is a directory, FIFO, socket or device.
    #[error("is not a regular file")]
    NotRegular,
    /// It should be a directory (itself, not a link to one).
    #[error("is not a directory (a link to one is not followed)")]
    NotDirectory,
    /// It is larger than the cap.
    #[error("is {size} bytes, more than the {cap} allowed")]
    TooLarge {
        /// Its size (or as much as was read).
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// It is not of the one size it must be.
    #[error("is {size} bytes, not the {expected} it must be")]
    WrongSize {
        /// Its size.
        size: u64,
        /// The size it must be.
        expected: u64,
    },
    /// Another user owns it.
    #[error("belongs to user {owner}, not to the user the host runs as ({me})")]
    ForeignOwner {
        /// Its owner's user id.
        owner: u32,
        /// The host's effective user id.
        me: u32,
    },
    /// Neither the host's user nor root owns it.
    #[error("belongs to user {owner}: only the user the host runs as ({me}) or root may own it")]
    UntrustedOwner {
        /// Its owner's user id.
        owner: u32,
        /// The host's effective user id.
        me: u32,
    },
    /// Its mode lets others write it (or, for a secret, read it).
    #[error("has mode {mode:o}; {}", if *secret { "only its owner may read or write it (chmod 600)" } else { "group and others must not be able to write it" })]
    Permissive {
        /// Its permission bits.
        mode: u32,
        /// Whether reading by others is forbidden too.
        secret: bool,
    },
}

/// Opens `path` for reading: never through a final link, never waiting on
/// a FIFO or device, and only if it is a regular file.
pub fn open_regular(path: &Path) -> Result<File, FileError> {
    let file = open_no_follow(path)?;
    let metadata = file.metadata().map_err(|e| FileError::io(FileAction::Read, path, e))?;
    if !metadata.is_file() {
        return Err(FileError::refused(path, FileProblem::NotRegular));
    }
    Ok(file)
}

/// Reads `path` whole if it is a regular file of at most `cap` bytes.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("note");
/// std::fs::write(&path, b"twelve bytes").unwrap();
/// assert_eq!(flowgate_log::fs::read_capped(&path, 12).unwrap(), b"twelve bytes");
/// assert!(flowgate_log::fs::read_capped(&path, 11).is_err(), "never more than the cap");
/// ```
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, FileError> {
    let file = open_regular(path)?;
    let size = file.metadata().map_err(|e| FileError::io(FileAction::Read, path, e))?.len();
    if size > cap {
        return Err(FileError::refused(path, FileProblem::TooLarge { size, cap }));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // The file may grow while it is read: never take more than the cap.
    file.take(cap + 1).read_to_end(&mut bytes).map_err(|e| FileError::io(FileAction::Read, path, e))?;
    if bytes.len() as u64 > cap {
        return Err(FileError::refused(path, FileProblem::TooLarge { size: bytes.len() as u64, cap }));
    }
    Ok(bytes)
}

/// Reads `path` whole, following links, if the file they lead to is a
/// regular file of at most `cap` bytes that belongs to the host's user or
/// to root and that no one else may write (nor, for a `secret`, read or
/// run: mode 0600 or stricter). The checks are made on the file as
/// opened, so a link swapped between check and read changes nothing.
pub fn read_through_links(path: &Path, cap: u64, secret: bool) -> Result<Vec<u8>, FileError> {
    let file = open_following(path)?;
    let metadata = file.metadata().map_err(|e| FileError::io(FileAction::Read, path, e))?;
    if !metadata.is_file() {
        return Err(FileError::refused(path, FileProblem::NotRegular));
    }
    check_owner_and_mode(path, &metadata, secret, Owners::HostOrRoot)?;
    if metadata.len() > cap {
        return Err(FileError::refused(path, FileProblem::TooLarge { size: metadata.len(), cap }));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(cap + 1).read_to_end(&mut bytes).map_err(|e| FileError::io(FileAction::Read, path, e))?;
    if bytes.len() as u64 > cap {
        return Err(FileError::refused(path, FileProblem::TooLarge { size: bytes.len() as u64, cap }));
    }
    Ok(bytes)
}

/// Opens `path` for reading through links, never waiting on a FIFO or device.
fn open_following(path: &Path) -> Result<File, FileError> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    options.open(path).map_err(|e| FileError::io(FileAction::Read, path, e))
}

#[cfg(unix)]
fn open_no_follow(path: &Path) -> Result<File, FileError> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY).open(path).map_err(
        |source| match source.raw_os_error() {
            Some(libc::ELOOP) => FileError::refused(path, FileProblem::Link),
            _ => FileError::io(FileAction::Read, path, source),
        },
    )
}

#[cfg(not(unix))]
fn open_no_follow(path: &Path) -> Result<File, FileError> {
    let metadata = std::fs::symlink_metadata(path).map_err(|e| FileError::io(FileAction::Read, path, e))?;
    if metadata.file_type().is_symlink() {
        return Err(FileError::refused(path, FileProblem::Link));
    }
    File::open(path).map_err(|e| FileError::io(FileAction::Read, path, e))
}

/// Creates `path` for writing with `mode` (on Unix), failing if anything,
/// a file or a link, is already there. `append` opens it for appending.
pub fn create_new(path: &Path, mode: u32, append: bool) -> Result<File, FileError> {
    let mut options = OpenOptions::new();
    options.write(true).append(append).create_new(true);
    no_follow(&mut options, mode);
    options.open(path).map_err(|e| FileError::io(FileAction::Create, path, e))
}

/// Opens an existing file for writing (appending if `append`), never through a link.
pub fn open_for_writing(path: &Path, append: bool) -> Result<File, FileError> {
    let mut options = OpenOptions::new();
    options.write(true).append(append);
    no_follow(&mut options, 0o600);
    options.open(path).map_err(|e| FileError::io(FileAction::Write, path, e))
}

/// Opens `path` for appending, creating it (with `mode`) if it is
/// missing, never through a link: for files that only ever grow.
pub fn open_appending(path: &Path, mode: u32) -> Result<File, FileError> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    no_follow(&mut options, mode);
    options.open(path).map_err(|e| FileError::io(FileAction::Create, path, e))
}

/// Opens `path` for writing, creating it (with `mode`) if it is missing,
/// never through a link and never truncating: for lock files, and files
/// rewritten in place.
pub fn open_or_create(path: &Path, mode: u32) -> Result<File, FileError> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(false);
    no_follow(&mut options, mode);
    options.open(path).map_err(|e| FileError::io(FileAction::Create, path, e))
}

#[cfg(unix)]
fn no_follow(options: &mut OpenOptions, mode: u32) {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(mode).custom_flags(libc::O_NOFOLLOW);
}

#[cfg(not(unix))]
fn no_follow(_options: &mut OpenOptions, _mode: u32) {}

/// Writes a new file with `mode`, refusing one that exists (or a link in
/// its place), and syncs it.
pub fn write_new(path: &Path, mode: u32, bytes: &[u8]) -> Result<(), FileError> {
    let mut file = create_new(path, mode, false)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| FileError::io(FileAction::Write, path, e))
}

/// Replaces `path` with `bytes` atomically: written to a fresh temporary
/// file beside it (created exclusively, never through a link), synced, and
/// renamed into place, so a reader sees the old file or the new one, whole.
pub fn replace(path: &Path, mode: u32, bytes: &[u8]) -> Result<(), FileError> {
    let temporary = temporary_beside(path)?;
    let written = write_new(&temporary, mode, bytes)
        .and_then(|()| std::fs::rename(&temporary, path).map_err(|e| FileError::io(FileAction::Rename, path, e)));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// Creates the directory `target` holding `files` (name and bytes, each
/// with `mode`), whole or not at all: written into a fresh temporary
/// directory beside it, then renamed into place. Returns `false`, writing
/// nothing, if something is at `target` already (entries written once
/// and never changed, as the archive's, need no more).
pub fn write_dir_new<'a>(
    target: &Path,
    mode: u32,
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<bool, FileError> {
    if std::fs::symlink_metadata(target).is_ok() {
        return Ok(false);
    }
    let temporary = temporary_beside(target)?;
    std::fs::create_dir(&temporary).map_err(|e| FileError::io(FileAction::Create, &temporary, e))?;
    let written = files.into_iter().try_for_each(|(name, bytes)| write_new(&temporary.join(name), mode, bytes));
    let renamed = written
        .and_then(|()| std::fs::rename(&temporary, target).map_err(|e| FileError::io(FileAction::Rename, target, e)));
    if renamed.is_err() {
        let _ = std::fs::remove_dir_all(&temporary);
    }
    match renamed {
        Ok(()) => Ok(true),
        // Another writer put the same entry there first.
        Err(_) if std::fs::symlink_metadata(target).is_ok() => Ok(false),
        Err(err) => Err(err),
    }
}

/// A fresh, unguessable name in `path`'s directory, for a temporary file
/// or directory that is renamed into `path` once complete.
pub fn temporary_beside(path: &Path) -> Result<PathBuf, FileError> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random)
        .map_err(|err| FileError::io(FileAction::Create, path, std::io::Error::other(err.to_string())))?;
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Ok(path.with_file_name(format!(".{name}.{}.{suffix}.tmp", std::process::id())))
}

/// Takes the exclusive lock of the file `path` (created with `mode` if
/// missing, never through a link) for as long as the file returned is
/// open; `None` if another process holds it.
pub fn lock_exclusive(path: &Path, mode: u32) -> Result<Option<File>, FileError> {
    let file = open_or_create(path, mode)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(err)) => Err(FileError::io(FileAction::Lock, path, err)),
    }
}

/// Fills `buf` from `file` (which is `path`) at `offset`, without moving
/// its cursor, so threads can share one open file.
pub fn read_exact_at(file: &File, path: &Path, offset: u64, buf: &mut [u8]) -> Result<(), FileError> {
    #[cfg(unix)]
    let read = std::os::unix::fs::FileExt::read_exact_at(file, buf, offset);
    #[cfg(not(unix))]
    let read = {
        use std::io::{Seek, SeekFrom};
        let mut file = file;
        file.seek(SeekFrom::Start(offset)).and_then(|_| file.read_exact(buf))
    };
    read.map_err(|e| FileError::io(FileAction::Read, path, e))
}

/// Writes `bytes` into `file` (which is `path`) at `offset`, without
/// moving its cursor.
pub fn write_all_at(file: &File, path: &Path, offset: u64, bytes: &[u8]) -> Result<(), FileError> {
    #[cfg(unix)]
    let written = std::os::unix::fs::FileExt::write_all_at(file, bytes, offset);
    #[cfg(not(unix))]
    let written = {
        use std::io::{Seek, SeekFrom};
        let mut file = file;
        file.seek(SeekFrom::Start(offset)).and_then(|_| file.write_all(bytes))
    };
    written.map_err(|e| FileError::io(FileAction::Write, path, e))
}

/// Makes the names created in `dir` survive a crash.
pub fn sync_dir(dir: &Path) -> Result<(), FileError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| FileError::io(FileAction::Write, dir, e))
}

/// Creates `dir` (and its parents) with `mode` if it is missing, then
/// checks it is a directory itself, not a link to one.
pub fn create_private_dir(dir: &Path, mode: u32) -> Result<(), FileError> {
    if std::fs::symlink_metadata(dir).is_err() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        builder.create(dir).map_err(|e| FileError::io(FileAction::Create, dir, e))?;
    }
    if !is_real_dir(dir) {
        return Err(FileError::refused(dir, FileProblem::NotDirectory));
    }
    Ok(())
}

/// Whether `path` is a directory itself, not a link to one.
pub fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|metadata| metadata.is_dir())
}

/// The entries of `dir`, sorted by name.
pub fn list(dir: &Path) -> Result<Vec<std::fs::DirEntry>, FileError> {
    let listing = |e| FileError::io(FileAction::List, dir, e);
    let mut entries = std::fs::read_dir(dir).map_err(listing)?.collect::<Result<Vec<_>, _>>().map_err(listing)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    Ok(entries)
}

/// The metadata of `path` itself (a link is not followed).
pub fn metadata(path: &Path) -> Result<Metadata, FileError> {
    std::fs::symlink_metadata(path).map_err(|e| FileError::io(FileAction::Read, path, e))
}

/// Refuses what another user owns, or what others could change (any
/// write by group or others) or, for a `secret`, read.
pub fn check_private(path: &Path, metadata: &Metadata, secret: bool) -> Result<(), FileError> {
    check_owner_and_mode(path, metadata, secret, Owners::Host)
}

/// Who may own a file the host trusts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owners {
    /// The host's own files (its log, keys, cache): the user it runs as.
    Host,
    /// Configuration an operator installs (the trust file): the host's
    /// user or root.
    HostOrRoot,
}

/// Refuses a file whose owner is not among `owners`, or whose mode lets
/// others write it (or, for a `secret`, use it at all).
fn check_owner_and_mode(path: &Path, metadata: &Metadata, secret: bool, owners: Owners) -> Result<(), FileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // SAFETY: geteuid has no preconditions and cannot fail.
        #[allow(unsafe_code)]
        let me = unsafe { libc::geteuid() };
        let owner = metadata.uid();
        match owners {
            Owners::Host if owner != me => {
                return Err(FileError::refused(path, FileProblem::ForeignOwner { owner, me }));
            }
            Owners::HostOrRoot if owner != me && owner != 0 => {
                return Err(FileError::refused(path, FileProblem::UntrustedOwner { owner, me }));
            }
            _ => {}
        }
        let mode = metadata.permissions().mode() & 0o777;
        let forbidden = if secret { 0o077 } else { 0o022 };
        if mode & forbidden != 0 {
            return Err(FileError::refused(path, FileProblem::Permissive { mode, secret }));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, metadata, secret, owners);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_writes_whole_files_and_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        replace(&path, 0o600, b"first").unwrap();
        replace(&path, 0o600, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(list(dir.path()).unwrap().len(), 1, "no temporary file is left behind");

        let target = dir.path().join("target");
        std::fs::write(&target, b"untouched").unwrap();
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&target, &link).unwrap();
            assert!(write_new(&link, 0o600, b"x").is_err(), "an exclusive create never follows a link");
            assert!(matches!(read_capped(&link, 100), Err(FileError::Refused { problem: FileProblem::Link, .. })));
            assert!(open_for_writing(&link, true).is_err());
            assert_eq!(std::fs::read(&target).unwrap(), b"untouched");
        }
    }

    #[test]
    fn reads_stop_at_the_cap_and_say_what_they_were_doing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, [7u8; 10]).unwrap();
        assert_eq!(read_capped(&path, 10).unwrap().len(), 10);
        let err = read_capped(&path, 9).unwrap_err();
        assert!(matches!(err, FileError::Refused { problem: FileProblem::TooLarge { size: 10, cap: 9 }, .. }));
        let missing = read_capped(&dir.path().join("missing"), 9).unwrap_err();
        assert!(missing.is_not_found());
        assert!(missing.to_string().starts_with("cannot read `"), "{missing}");
        let err = create_new(&path, 0o600, false).unwrap_err();
        assert!(err.to_string().starts_with("cannot create `"), "{err}");
        assert!(matches!(read_capped(dir.path(), 9), Err(FileError::Refused { problem: FileProblem::NotRegular, .. })));
    }

    #[cfg(unix)]
    #[test]
    fn configuration_files_are_read_through_links_and_checked_as_opened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // Kubernetes' layout: `file -> ..data/file`, `..data -> ..2026_01_01`.
        let version = dir.path().join("..2026_01_01");
        std::fs::create_dir(&version).unwrap();
        write_new(&version.join("file"), 0o644, b"public").unwrap();
        std::os::unix::fs::symlink("..2026_01_01", dir.path().join("..data")).unwrap();
        let link = dir.path().join("file");
        std::os::unix::fs::symlink("..data/file", &link).unwrap();
        assert_eq!(read_through_links(&link, 100, false).unwrap(), b"public");
        assert!(matches!(
            read_through_links(&link, 3, false),
            Err(FileError::Refused { problem: FileProblem::TooLarge { .. }, .. })
        ));
        // A secret must be its owner's alone; anything else may not be written by others.
        let err = read_through_links(&link, 100, true).unwrap_err();
        assert!(
            matches!(err, FileError::Refused { problem: FileProblem::Permissive { mode: 0o644, secret: true }, .. }),
            "{err}"
        );
        std::fs::set_permissions(version.join("file"), std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_through_links(&link, 100, true).unwrap(), b"public");
        std::fs::set_permissions(version.join("file"), std::fs::Permissions::from_mode(0o664)).unwrap();
        assert!(matches!(
            read_through_links(&link, 100, false),
            Err(FileError::Refused { problem: FileProblem::Permissive { .. }, .. })
        ));
        // A link to a directory or a device is not a file.
        std::os::unix::fs::symlink(dir.path(), dir.path().join("dir-link")).unwrap();
        assert!(matches!(
            read_through_links(&dir.path().join("dir-link"), 100, false),
            Err(FileError::Refused { problem: FileProblem::NotRegular, .. })
        ));
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero")).unwrap();
        assert!(matches!(
            read_through_links(&dir.path().join("zero"), 100, false),
            Err(FileError::Refused { problem: FileProblem::NotRegular, .. })
        ));
        // A dangling link is a missing file.
        std::os::unix::fs::symlink("nowhere", dir.path().join("dangling")).unwrap();
        assert!(read_through_links(&dir.path().join("dangling"), 100, false).unwrap_err().is_not_found());
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_checked_for_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_new(&path, 0o600, b"s").unwrap();
        check_private(&path, &metadata(&path).unwrap(), true).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = check_private(&path, &metadata(&path).unwrap(), true).unwrap_err();
        assert!(matches!(
            err,
            FileError::Refused { problem: FileProblem::Permissive { mode: 0o640, secret: true }, .. }
        ));
        check_private(&path, &metadata(&path).unwrap(), false).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn owners_are_checked_as_each_kind_of_file_allows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        write_new(&path, 0o600, b"s").unwrap();
        check_private(&path, &metadata(&path).unwrap(), true).unwrap();
        assert_eq!(read_through_links(&path, 10, true).unwrap(), b"s");
        // SAFETY: geteuid has no preconditions and cannot fail.
        #[allow(unsafe_code)]
        let me = unsafe { libc::geteuid() };
        if me == 0 {
            // Root can give the file away: neither check may accept another user.
            std::os::unix::fs::chown(&path, Some(4242), None).unwrap();
            let err = check_private(&path, &metadata(&path).unwrap(), true).unwrap_err();
            assert!(matches!(
                err,
                FileError::Refused { problem: FileProblem::ForeignOwner { owner: 4242, me: 0 }, .. }
            ));
            let err = read_through_links(&path, 10, true).unwrap_err();
            assert!(matches!(
                err,
                FileError::Refused { problem: FileProblem::UntrustedOwner { owner: 4242, me: 0 }, .. }
            ));
        } else {
            // Root's files: configuration may be root's, the host's own files may not.
            let passwd = Path::new("/etc/passwd");
            let err = check_private(passwd, &metadata(passwd).unwrap(), false).unwrap_err();
            assert!(matches!(err, FileError::Refused { problem: FileProblem::ForeignOwner { owner: 0, .. }, .. }));
            assert!(read_through_links(passwd, 1 << 20, false).is_ok());
        }
    }
}
