//! The polyglot artifacts, built once per test binary by `polyglot/build.sh`
//! from the very store component the other tests use.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::flow::repo_root;

pub struct Artifacts {
    /// The Python runner guest composed with the store.
    pub python: PathBuf,
    /// The JavaScript runner guest composed with the store.
    pub js: PathBuf,
    /// The store transpiled by jco: the ES module Node imports.
    pub node_bindings: PathBuf,
}

/// Builds (or reuses) the artifacts. Panics with the build's own output if
/// anything is missing or fails: these tests never skip.
pub fn get() -> &'static Artifacts {
    static ARTIFACTS: OnceLock<Artifacts> = OnceLock::new();
    ARTIFACTS.get_or_init(|| {
        let script = repo_root().join("polyglot").join("build.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(host_test::component())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{} failed ({}):\n{stderr}",
            script.display(),
            out.status
        );
        eprint!("{stderr}");
        let stdout = String::from_utf8(out.stdout).expect("UTF-8 paths");
        let field = |name: &str| -> PathBuf {
            let line = stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("build.sh printed no {name}= line:\n{stdout}"));
            let path = PathBuf::from(line);
            assert!(
                path.is_file(),
                "build.sh named {} but it does not exist",
                path.display()
            );
            path
        };
        Artifacts {
            python: field("python"),
            js: field("js"),
            node_bindings: field("node"),
        }
    })
}
