//! The HDF5 library opens files without close-on-exec, so a child process
//! started while an `.h5ad` is open (a Python tool, `sbatch`, a test's
//! helper) would inherit the descriptor and the library's lock on the file,
//! and a later open of the same file in this process would fail with
//! "unable to lock file". [`close_on_exec`] marks an open file's descriptor
//! close-on-exec right after the library opens it.

#![allow(unsafe_code)]

use std::ffi::{c_int, c_void};

use hdf5::File;
use hdf5_sys::h5f::H5Fget_vfd_handle;
use hdf5_sys::h5p::H5P_DEFAULT;

/// Marks the operating-system descriptor behind `file` close-on-exec.
///
/// Files are opened and created with the library's default (POSIX, `sec2`)
/// driver, whose handle is the `int` descriptor; an error means the handle
/// could not be read or the flag not set.
pub(super) fn close_on_exec(file: &File) -> Result<(), String> {
    hdf5::sync::sync(|| {
        let mut handle: *mut c_void = std::ptr::null_mut();
        // SAFETY: `file.id()` is a valid, open file identifier for the whole
        // call (`file` is borrowed), `handle` is a valid place for the library
        // to write one pointer, and the library's global lock is held.
        let status = unsafe { H5Fget_vfd_handle(file.id(), H5P_DEFAULT, &mut handle) };
        if status < 0 || handle.is_null() {
            return Err("the HDF5 library gave no file descriptor".to_owned());
        }
        // SAFETY: for the default `sec2` driver the handle points at the
        // driver's `int` descriptor, which lives as long as the open file.
        let descriptor = unsafe { *handle.cast::<c_int>() };
        // SAFETY: `fcntl` with F_GETFD/F_SETFD only reads and sets the
        // descriptor's flags; an invalid descriptor gives -1, checked below.
        let flags = unsafe { libc::fcntl(descriptor, libc::F_GETFD) };
        if flags < 0
            || unsafe { libc::fcntl(descriptor, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0
        {
            return Err(format!(
                "cannot mark descriptor {descriptor} close-on-exec: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::process::Command;

    use super::super::{atomically, open};

    /// What a child process started now has open (`ls -l /proc/self/fd` in the child).
    fn a_childs_descriptors() -> String {
        let listing = Command::new("ls")
            .args(["-l", "/proc/self/fd"])
            .output()
            .expect("ls runs");
        String::from_utf8_lossy(&listing.stdout).into_owned()
    }

    #[test]
    fn a_child_process_inherits_no_open_h5ad() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("cells.h5ad");
        atomically(&path, |_| {
            let listing = a_childs_descriptors();
            assert!(listing.contains("/proc/"), "ls listed: {listing}");
            assert!(
                !listing.contains("cells.h5ad"),
                "a child inherited the file being written: {listing}"
            );
            Ok(())
        })
        .unwrap();
        let file = open(&path).unwrap();
        let listing = a_childs_descriptors();
        assert!(
            !listing.contains("cells.h5ad"),
            "a child inherited the open file: {listing}"
        );
        drop(file);
    }
}
