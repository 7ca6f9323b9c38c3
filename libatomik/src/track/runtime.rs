//! Container names from the runtimes' own state, where it is readable: the path of a
//! container's cgroup gives its id ([`identify`](super::container::identify)), the name
//! people gave it (`docker run --name web`) is only in the runtime's files.
//!
//! - Docker: `<docker>/containers/<id>/config.v2.json`, field `Name` (`/web`).
//! - CRI-O and Podman (containers/storage): `<storage>/overlay-containers/containers.json`,
//!   a list of `{"id", "names": [...]}`.
//! - containerd keeps its names in a bolt database (`meta.db`): not read, so its
//!   containers keep the id alone.
//!
//! The files are root-only on most hosts: unreadable means no name, never an error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where the runtimes keep their state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeState {
    /// Docker's data root (`/var/lib/docker`).
    pub docker: PathBuf,
    /// containers/storage's graph root, used by CRI-O and Podman (`/var/lib/containers/storage`).
    pub containers_storage: PathBuf,
}

impl Default for RuntimeState {
    fn default() -> Self {
        RuntimeState {
            docker: "/var/lib/docker".into(),
            containers_storage: "/var/lib/containers/storage".into(),
        }
    }
}

impl RuntimeState {
    /// The state under one directory, `docker/` and `containers/storage/` in it (tests).
    pub fn under(root: &Path) -> RuntimeState {
        RuntimeState { docker: root.join("docker"), containers_storage: root.join("containers/storage") }
    }
}

/// Looks names up and remembers them: a container's name does not change while its
/// cgroup lives, so each state file is read once per container, not once per sample.
#[derive(Debug, Default)]
pub struct Names {
    state: RuntimeState,
    known: HashMap<(String, String), Option<String>>,
}

impl Names {
    /// Names from `state`.
    pub fn new(state: RuntimeState) -> Names {
        Names { state, known: HashMap::new() }
    }

    /// The name the runtime of `kind` (`docker`, `cri-o`, `podman`, as
    /// [`Identity::kind`](super::container::Identity::kind)) gave container `id`.
    pub fn get(&mut self, kind: &str, id: &str) -> Option<String> {
        let key = (kind.to_owned(), id.to_owned());
        if let Some(n) = self.known.get(&key) {
            return n.clone();
        }
        let n = match kind {
            "docker" => docker_name(&self.state.docker, id),
            "cri-o" | "podman" => storage_name(&self.state.containers_storage, id),
            _ => None,
        };
        self.known.insert(key, n.clone());
        n
    }
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn docker_name(root: &Path, id: &str) -> Option<String> {
    // The id comes from a cgroup path: only hex digits (checked by `identify`), so it
    // cannot climb out of `containers/`.
    if !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let v = read_json(&root.join("containers").join(id).join("config.v2.json"))?;
    let name = v.get("Name")?.as_str()?.trim_start_matches('/');
    (!name.is_empty()).then(|| name.to_owned())
}

fn storage_name(root: &Path, id: &str) -> Option<String> {
    let v = read_json(&root.join("overlay-containers/containers.json"))?;
    let c = v.as_array()?.iter().find(|c| c.get("id").and_then(|i| i.as_str()) == Some(id))?;
    Some(c.get("names")?.as_array()?.first()?.as_str()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f3c2b1a09e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29180706f5e4d3c2b1a09";

    #[test]
    fn docker_and_containers_storage_names() {
        let t = tempfile::tempdir().unwrap();
        let s = RuntimeState::under(t.path());
        let d = s.docker.join("containers").join(ID);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("config.v2.json"), r#"{"ID":"x","Name":"/web","State":{}}"#).unwrap();
        std::fs::create_dir_all(s.containers_storage.join("overlay-containers")).unwrap();
        std::fs::write(
            s.containers_storage.join("overlay-containers/containers.json"),
            format!(r#"[{{"id":"aa","names":["other"]}},{{"id":"{ID}","names":["k8s_redis_cache-0","x"]}}]"#),
        )
        .unwrap();
        let mut n = Names::new(s);
        assert_eq!(n.get("docker", ID).as_deref(), Some("web"));
        std::fs::remove_file(d.join("config.v2.json")).unwrap();
        assert_eq!(n.get("docker", ID).as_deref(), Some("web"), "remembered");
        assert_eq!(n.get("cri-o", ID).as_deref(), Some("k8s_redis_cache-0"));
        assert_eq!(n.get("podman", "aa").as_deref(), Some("other"));
        assert_eq!(n.get("containerd", ID), None, "containerd's names are in a bolt database");
        assert_eq!(n.get("docker", "../../etc"), None);
        assert_eq!(Names::new(RuntimeState::under(&t.path().join("none"))).get("docker", ID), None);
    }
}
