//! Advisory locks beside a session file, and clearing what dead writers left.
//!
//! Two lock files sit beside `NAME.ron` (they are never removed; a lock
//! dies with the process holding it, so a crash leaves nothing locked):
//!
//! - `.NAME.ron.lock` is held for the few milliseconds of a save (read the
//!   file, merge, write, rename), so saves of several programs never
//!   interleave ([`SaveLock`]).
//! - `.NAME.ron.owner` is held by a workbench for as long as it has the
//!   session open and names it (`pid 123 on host`), so a second workbench
//!   opens the session read-only and says who holds it ([`OwnerLock`]).
//!
//! The locks are the operating system's advisory file locks (`flock` on
//! Unix, `LockFileEx` on Windows) through `std::fs::File::lock`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::SessionError;
use super::file::{folder_of, temp_path};

/// `.NAME.SUFFIX` beside `path`.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    folder_of(path).join(format!(".{name}.{suffix}"))
}

fn open_lock_file(path: &Path) -> Result<File, SessionError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| SessionError::Io {
            path: path.to_path_buf(),
            action: "cannot open the lock file",
            cause: source,
        })
}

/// The exclusive lock held while a session is saved; released on drop.
#[derive(Debug)]
pub struct SaveLock {
    _file: File,
}

impl SaveLock {
    /// Waits until no other program saves the session at `path`, then holds
    /// its save lock.
    pub fn acquire(path: &Path) -> Result<SaveLock, SessionError> {
        let lock_path = beside(path, "lock");
        let file = open_lock_file(&lock_path)?;
        file.lock().map_err(|source| SessionError::Io {
            path: lock_path,
            action: "cannot lock",
            cause: source,
        })?;
        Ok(SaveLock { _file: file })
    }
}

/// A workbench's claim on a session, held while it is open; released on drop.
#[derive(Debug)]
pub struct OwnerLock {
    _file: File,
}

impl OwnerLock {
    /// Claims the session at `path`: `Ok(Ok(lock))` when this process now
    /// holds it, `Ok(Err(holder))` when another does (`holder` says who, e.g.
    /// `pid 4242 on lab-3`).
    pub fn claim(path: &Path) -> Result<Result<OwnerLock, String>, SessionError> {
        let lock_path = beside(path, "owner");
        let mut file = open_lock_file(&lock_path)?;
        let io = |source| SessionError::Io {
            path: lock_path.clone(),
            action: "cannot lock",
            cause: source,
        };
        match file.try_lock() {
            Ok(()) => {
                let me = format!("pid {} on {}", std::process::id(), host_name());
                file.set_len(0)
                    .and_then(|()| file.rewind())
                    .and_then(|()| file.write_all(me.as_bytes()))
                    .map_err(io)?;
                Ok(Ok(OwnerLock { _file: file }))
            }
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // Unreadable details still leave the fact that it is held.
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                Ok(Err(if holder.is_empty() {
                    "another program".to_string()
                } else {
                    holder.to_string()
                }))
            }
            Err(TryLockError::Error(source)) => Err(io(source)),
        }
    }
}

/// This machine's name, for telling users who holds a session.
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|file| std::fs::read_to_string(file).ok())
        .map(|name| name.trim().to_string())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "an unknown host".into())
}

/// Removes the temporary files (`.NAME.PID.tmp`) that saves of dead
/// processes left beside `path`; call it holding the [`SaveLock`] (every
/// live writer holds it while its temporary file exists). Returns the files
/// removed.
pub fn remove_stale_temp_files(path: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder_of(path)) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_file_pid(path, &file_name) else {
            continue;
        };
        let candidate = temp_path(path, pid);
        if !process_alive(pid) && std::fs::remove_file(&candidate).is_ok() {
            removed.push(candidate);
        }
    }
    removed
}

/// The process id in `file_name` if it is a temporary file of `path`'s saves.
fn temp_file_pid(path: &Path, file_name: &str) -> Option<u32> {
    let name = path.file_name()?.to_string_lossy();
    let pid = file_name
        .strip_prefix(&format!(".{name}."))?
        .strip_suffix(".tmp")?;
    pid.parse().ok()
}

/// Whether process `pid` still runs. Where that cannot be asked (no
/// `/proc`), only this process counts as alive: under the save lock no
/// other writer of this program is writing.
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    proc.join("self").exists() && proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_names_the_holder_and_a_dropped_lock_is_free_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.ron");
        let first = OwnerLock::claim(&path).unwrap().unwrap();
        let holder = OwnerLock::claim(&path).unwrap().unwrap_err();
        assert!(
            holder.starts_with(&format!("pid {} on ", std::process::id())),
            "{holder}"
        );
        drop(first);
        assert!(OwnerLock::claim(&path).unwrap().is_ok());
    }

    #[test]
    fn temp_files_of_dead_processes_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.ron");
        // Pids above the kernel's maximum (4,194,304) never run.
        let dead = temp_path(&path, 4_194_305);
        let mine = temp_path(&path, std::process::id());
        let other = dir.path().join(".t.ron.4194305.tmp");
        for file in [&dead, &mine, &other] {
            std::fs::write(file, "x").unwrap();
        }
        assert_eq!(remove_stale_temp_files(&path), vec![dead.clone()]);
        assert!(!dead.exists() && mine.exists() && other.exists());
    }
}
