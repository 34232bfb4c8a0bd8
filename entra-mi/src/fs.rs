//! The file-system edge: the few reads managed identity needs (the Arc agent binary, the Arc
//! key file), injected so detection and the Arc challenge are tested without touching disk.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

/// The file reads managed identity makes. The default is [`SystemFileSystem`]; tests inject
/// [`MemoryFileSystem`].
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Whether a file exists at `path`.
    fn exists(&self, path: &Path) -> bool;

    /// Reads at most `limit` bytes from the start of the file at `path`. A file longer than
    /// `limit` yields exactly `limit` bytes, so a caller that wants to refuse files larger than
    /// `n` asks for `n + 1` bytes and checks the length.
    fn read_at_most(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>>;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemFileSystem;

impl FileSystem for SystemFileSystem {
    fn exists(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn read_at_most(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        let mut content = Vec::new();
        std::fs::File::open(path)?
            .take(limit)
            .read_to_end(&mut content)?;
        Ok(content)
    }
}

/// An in-memory file system, for tests: files are added with [`MemoryFileSystem::with_file`]
/// or [`MemoryFileSystem::insert`], and every read is recorded.
///
/// ```
/// use entra_mi::{FileSystem, MemoryFileSystem};
/// use std::path::Path;
///
/// let fs = MemoryFileSystem::new().with_file("/opt/azcmagent/bin/himds", "");
/// assert!(fs.exists(Path::new("/opt/azcmagent/bin/himds")));
/// assert!(!fs.exists(Path::new("/etc/passwd")));
/// ```
#[derive(Clone, Default)]
pub struct MemoryFileSystem {
    files: Arc<RwLock<HashMap<PathBuf, Vec<u8>>>>,
    reads: Arc<RwLock<Vec<PathBuf>>>,
}

impl MemoryFileSystem {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file.
    pub fn with_file(self, path: impl Into<PathBuf>, content: impl Into<Vec<u8>>) -> Self {
        self.insert(path, content);
        self
    }

    /// Adds or replaces a file.
    pub fn insert(&self, path: impl Into<PathBuf>, content: impl Into<Vec<u8>>) {
        self.files
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.into(), content.into());
    }

    /// Every path read so far, in order.
    pub fn reads(&self) -> Vec<PathBuf> {
        self.reads
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl fmt::Debug for MemoryFileSystem {
    // File contents may be keys: show paths only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files = self.files.read().unwrap_or_else(PoisonError::into_inner);
        let mut paths: Vec<&PathBuf> = files.keys().collect();
        paths.sort();
        f.debug_tuple("MemoryFileSystem").field(&paths).finish()
    }
}

impl FileSystem for MemoryFileSystem {
    fn exists(&self, path: &Path) -> bool {
        self.files
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(path)
    }

    fn read_at_most(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        self.reads
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(path.to_owned());
        let files = self.files.read().unwrap_or_else(PoisonError::into_inner);
        let content = files
            .get(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let end = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .min(content.len());
        Ok(content[..end].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_capped_and_recorded() {
        let fs = MemoryFileSystem::new().with_file("/k", vec![b'x'; 10]);
        assert_eq!(fs.read_at_most(Path::new("/k"), 4).unwrap().len(), 4);
        assert_eq!(fs.read_at_most(Path::new("/k"), 40).unwrap().len(), 10);
        assert_eq!(
            fs.read_at_most(Path::new("/missing"), 4)
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(fs.reads().len(), 3);
    }

    #[test]
    fn the_real_file_system_caps_reads() {
        let path = std::env::temp_dir().join(format!("entra-mi-fs-{}", std::process::id()));
        std::fs::write(&path, [7u8; 100]).unwrap();
        let fs = SystemFileSystem;
        assert!(fs.exists(&path));
        assert_eq!(fs.read_at_most(&path, 10).unwrap(), vec![7u8; 10]);
        std::fs::remove_file(&path).unwrap();
        assert!(!fs.exists(&path));
    }
}
