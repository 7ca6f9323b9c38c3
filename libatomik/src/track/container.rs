//! Names people know for cgroup paths: systemd units, Docker / containerd / CRI-O / Podman
//! containers, Kubernetes pods — from the path conventions of systemd and of the container
//! runtimes (both their systemd and their cgroupfs drivers). Nothing is asked of a runtime:
//! the path alone decides, so it works for any cgroup tree that is readable.

/// What a cgroup is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `systemd-service`, `systemd-scope`, `systemd-slice`, `systemd-session`,
    /// `systemd-user`, `docker`, `containerd`, `cri-o`, `podman`, `kubernetes-pod`,
    /// `libvirt-machine`.
    pub kind: &'static str,
    /// The name to show: the unit, `docker:1a2b3c4d5e6f`, `pod 1234abcd-…`.
    pub name: String,
    /// The container id, when the cgroup is a container.
    pub container_id: Option<String>,
    /// The Kubernetes pod UID, when the cgroup is a pod or a container of one.
    pub pod_uid: Option<String>,
    /// The pod's QoS class (`guaranteed`, `burstable`, `besteffort`).
    pub qos: Option<String>,
    /// The container's name in its runtime's state, where readable
    /// ([`runtime::Names`](super::runtime::Names)); `identify` leaves it `None`.
    pub container_name: Option<String>,
}

fn is_hex_id(s: &str) -> bool {
    s.len() >= 12 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The pod UID in a path component `pod<uid>` or `kubepods-<qos>-pod<uid>.slice` (the
/// systemd driver writes the UID's dashes as underscores).
fn pod_uid(part: &str) -> Option<String> {
    let p = part.strip_suffix(".slice").unwrap_or(part);
    let uid = p.rsplit_once("pod").map(|(_, u)| u)?;
    let uid = uid.replace('_', "-");
    (uid.len() >= 32 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')).then_some(uid)
}

/// A container id in the last component: `docker-<id>.scope`, `cri-containerd-<id>.scope`,
/// `crio-<id>.scope`, `libpod-<id>.scope`, or a bare `<id>` (cgroupfs drivers).
fn container(part: &str, parent: Option<&str>) -> Option<(&'static str, String)> {
    let stem = part.strip_suffix(".scope").unwrap_or(part);
    for (prefix, kind) in [
        ("docker-", "docker"),
        ("cri-containerd-", "containerd"),
        ("crio-conmon-", "cri-o"),
        ("crio-", "cri-o"),
        ("libpod-conmon-", "podman"),
        ("libpod-", "podman"),
    ] {
        if let Some(id) = stem.strip_prefix(prefix).filter(|id| is_hex_id(id)) {
            return Some((kind, id.to_owned()));
        }
    }
    if is_hex_id(stem) && stem.len() == 64 {
        let kind = match parent {
            Some("docker") => "docker",
            Some(p) if p.starts_with("pod") => "containerd",
            _ => "containerd",
        };
        return Some((kind, stem.to_owned()));
    }
    None
}

/// Decodes systemd's `\x2d` escapes in unit names.
fn unescape(unit: &str) -> String {
    let mut out = String::new();
    let mut rest = unit;
    while let Some(i) = rest.find("\\x") {
        out.push_str(&rest[..i]);
        match u8::from_str_radix(rest.get(i + 2..i + 4).unwrap_or(""), 16) {
            Ok(b) => {
                out.push(b as char);
                rest = &rest[i + 4..];
            }
            Err(_) => {
                out.push_str("\\x");
                rest = &rest[i + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// What the cgroup at `path` is, if its path follows a known convention.
pub fn identify(path: &str) -> Option<Identity> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let last = *parts.last()?;
    let parent = parts.len().checked_sub(2).map(|i| parts[i]);
    let pod = parts.iter().rev().find_map(|p| pod_uid(p));
    let qos = parts.iter().find_map(|p| {
        let p = p.strip_suffix(".slice").unwrap_or(p);
        ["burstable", "besteffort"]
            .into_iter()
            .find(|q| p == *q || p.ends_with(&format!("-{q}")))
            .map(str::to_owned)
    });
    let in_pods = parts.first().is_some_and(|p| p.starts_with("kubepods"));
    let qos = if in_pods && pod.is_some() { qos.or(Some("guaranteed".to_owned())) } else { None };
    if let Some((kind, id)) = container(last, parent) {
        return Some(Identity {
            kind,
            name: format!("{kind}:{}", &id[..12]),
            container_id: Some(id),
            pod_uid: pod,
            qos,
            container_name: None,
        });
    }
    if let Some(uid) = pod_uid(last).filter(|_| in_pods) {
        return Some(Identity {
            kind: "kubernetes-pod",
            name: format!("pod {uid}"),
            container_id: None,
            pod_uid: Some(uid),
            qos,
            container_name: None,
        });
    }
    let unit = unescape(last);
    let id = |kind| {
        Some(Identity {
            kind,
            name: unit.clone(),
            container_id: None,
            pod_uid: None,
            qos: None,
            container_name: None,
        })
    };
    if parts.first() == Some(&"machine.slice") && unit.starts_with("machine-") && unit.ends_with(".scope") {
        let name = unit.trim_start_matches("machine-").trim_end_matches(".scope").to_owned();
        return Some(Identity {
            kind: "libvirt-machine",
            name,
            container_id: None,
            pod_uid: None,
            qos: None,
            container_name: None,
        });
    }
    if unit.starts_with("session-") && unit.ends_with(".scope") {
        return id("systemd-session");
    }
    if unit.starts_with("user@") && unit.ends_with(".service") {
        return id("systemd-user");
    }
    match unit.rsplit_once('.').map(|(_, s)| s) {
        Some("service") => id("systemd-service"),
        Some("scope") => id("systemd-scope"),
        Some("slice") => id("systemd-slice"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

    #[test]
    fn systemd_units_sessions_and_machines() {
        let k = |p: &str| identify(p).map(|i| (i.kind, i.name));
        assert_eq!(k("/system.slice/nginx.service"), Some(("systemd-service", "nginx.service".into())));
        assert_eq!(k("/system.slice"), Some(("systemd-slice", "system.slice".into())));
        assert_eq!(
            k("/user.slice/user-1000.slice/session-3.scope"),
            Some(("systemd-session", "session-3.scope".into()))
        );
        assert_eq!(
            k("/user.slice/user-1000.slice/user@1000.service"),
            Some(("systemd-user", "user@1000.service".into()))
        );
        assert_eq!(
            k("/system.slice/system-getty.slice/getty@tty1.service"),
            Some(("systemd-service", "getty@tty1.service".into()))
        );
        assert_eq!(
            k("/machine.slice/machine-qemu\\x2d1\\x2dvm1.scope"),
            Some(("libvirt-machine", "qemu-1-vm1".into()))
        );
        assert_eq!(k("/"), None);
        assert_eq!(k("/atomik-demo/cache"), None);
    }

    #[test]
    fn containers_of_each_runtime_and_driver() {
        let c = |p: &str| identify(&p.replace("ID", ID)).map(|i| (i.kind, i.name, i.container_id));
        let want = |kind| Some((kind, format!("{kind}:{}", &ID[..12]), Some(ID.to_owned())));
        assert_eq!(c("/system.slice/docker-ID.scope"), want("docker"));
        assert_eq!(c("/docker/ID"), want("docker"));
        assert_eq!(c("/machine.slice/libpod-ID.scope"), want("podman"));
        assert_eq!(c("/system.slice/crio-ID.scope"), want("cri-o"));
    }

    #[test]
    fn kubernetes_pods_and_their_containers() {
        let uid = "1d2e3f40-5a6b-7c8d-9e0f-a1b2c3d4e5f6";
        let systemd = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
            uid.replace('-', "_")
        );
        let pod = identify(&systemd).unwrap();
        assert_eq!(
            (pod.kind, pod.pod_uid.as_deref(), pod.qos.as_deref()),
            ("kubernetes-pod", Some(uid), Some("burstable"))
        );
        let ctr = identify(&format!("{systemd}/cri-containerd-{ID}.scope")).unwrap();
        assert_eq!(
            (ctr.kind, ctr.pod_uid.as_deref(), ctr.container_id.as_deref()),
            ("containerd", Some(uid), Some(ID))
        );
        let cgroupfs = identify(&format!("/kubepods/pod{uid}/{ID}")).unwrap();
        assert_eq!(
            (cgroupfs.kind, cgroupfs.pod_uid.as_deref(), cgroupfs.qos.as_deref()),
            ("containerd", Some(uid), Some("guaranteed"))
        );
        let crio =
            identify(&format!("/kubepods.slice/kubepods-pod{}.slice/crio-{ID}.scope", uid.replace('-', "_")))
                .unwrap();
        assert_eq!((crio.kind, crio.qos.as_deref()), ("cri-o", Some("guaranteed")));
    }
}
