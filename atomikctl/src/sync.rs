//! `atomikctl sync serve|join|status`: replicate a bank over authenticated TCP, or (join
//! `--nats`) through a NATS JetStream stream.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use atomik::replica::daemon::{Daemon, DaemonConfig};
use atomik::Op;

/// `sync` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SyncCmd {
    /// Replicate BANK and accept peers on ADDR.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on, e.g. 127.0.0.1:7400.
        #[arg(long)]
        listen: String,
        /// Also dial these peers (repeatable).
        #[arg(long)]
        peer: Vec<String>,
    },
    /// Replicate BANK with the peer at ADDR (reconnecting with backoff), or through NATS.
    Join {
        #[command(flatten)]
        common: Common,
        /// Peer address (repeatable).
        #[arg(long, required_unless_present = "nats")]
        peer: Vec<String>,
        /// Replicate through this NATS JetStream server instead of TCP peers, e.g.
        /// nats://127.0.0.1:4222. Every frame is signed with the shared secret (--secret-file
        /// or ATOMIK_SYNC_SECRET), and frames that do not verify are refused.
        #[arg(long, conflicts_with = "peer")]
        nats: Option<String>,
        #[command(flatten)]
        nats_auth: Box<NatsAuthArgs>,
        /// Name of the replicated bank on NATS (default: --bank). Replicas on one machine
        /// need distinct bank names but the same group.
        #[arg(long, requires = "nats")]
        group: Option<String>,
        /// Own messages between two snapshots of this origin on NATS.
        #[arg(long, hide = true, default_value_t = 1000, requires = "nats")]
        nats_snapshot_every: u64,
        /// Messages the stream keeps per origin (when this replica creates the stream).
        #[arg(long, hide = true, default_value_t = 4096, requires = "nats")]
        nats_max_per_subject: i64,
    },
    /// Rebind BANK after its replica directory was lost: keeps the bank's local changes not
    /// yet replicated, drops the rest, which the peers send again when the daemon runs.
    Recover {
        /// Bank name.
        #[arg(long)]
        bank: String,
        /// The (new, empty) replica directory.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Retire this replica for good (its daemon stopped): hand everything it holds to the
    /// running peer at --peer, which adopts its origin so that no replica keeps a column for
    /// it. The bank stays, reading the replicated state plus later local changes.
    Leave {
        /// Bank name.
        #[arg(long)]
        bank: String,
        /// Replica directory.
        #[arg(long)]
        data: Option<PathBuf>,
        /// The peer (a running `sync serve` daemon's listen address) that adopts this replica.
        #[arg(long, required_unless_present = "nats", conflicts_with = "nats")]
        peer: Option<String>,
        /// Leave through this NATS JetStream server (a replica that joined with --nats).
        #[arg(long)]
        nats: Option<String>,
        /// Name of the replicated bank on NATS (default: --bank).
        #[arg(long, requires = "nats")]
        group: Option<String>,
        /// With --nats: the origin id (16 hex digits, from its `atomikctl sync status`) of the
        /// running replica that adopts this one.
        #[arg(long, requires = "nats", value_parser = parse_origin)]
        adopter: Option<u64>,
        #[command(flatten)]
        nats_auth: Box<NatsAuthArgs>,
        /// File holding the shared secret (else $ATOMIK_SYNC_SECRET).
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// Give up (retiring nothing) after this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout_s: u64,
    },
    /// Show a daemon's replica state from its directory.
    Status {
        /// Bank name (for the default --data).
        #[arg(long)]
        bank: String,
        /// Replica directory.
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

/// How `join --nats` authenticates to the NATS server (secrets are read from files).
#[derive(Debug, Clone, clap::Args)]
pub struct NatsAuthArgs {
    /// NATS user credentials file (.creds: JWT and nkey seed).
    #[arg(long, value_name = "FILE", requires = "nats")]
    pub nats_creds: Option<PathBuf>,
    /// File holding an nkey seed (SU...).
    #[arg(long, value_name = "FILE", requires = "nats")]
    pub nats_nkey: Option<PathBuf>,
    /// NATS user name (with --nats-password-file).
    #[arg(long, requires_all = ["nats", "nats_password_file"])]
    pub nats_user: Option<String>,
    /// File holding the NATS user's password (with --nats-user).
    #[arg(long, value_name = "FILE", requires = "nats_user")]
    pub nats_password_file: Option<PathBuf>,
    /// File holding a NATS authentication token.
    #[arg(long, value_name = "FILE", requires = "nats")]
    pub nats_token_file: Option<PathBuf>,
    /// PEM file of the CA(s) that sign the server's certificate (requires TLS).
    #[arg(long, value_name = "FILE", requires = "nats")]
    pub nats_tls_ca: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with --nats-tls-key).
    #[arg(long, value_name = "FILE", requires_all = ["nats", "nats_tls_key"])]
    pub nats_tls_cert: Option<PathBuf>,
    /// PEM private key of --nats-tls-cert.
    #[arg(long, value_name = "FILE", requires = "nats_tls_cert")]
    pub nats_tls_key: Option<PathBuf>,
}

/// Options shared by serve and join.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Bank to replicate (created with --slots/--op if absent).
    #[arg(long)]
    pub bank: String,
    /// Replica directory (default /var/lib/atomik/sync/BANK).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Slots when creating the bank.
    #[arg(long)]
    pub slots: Option<u64>,
    /// Operator when creating the bank.
    #[arg(long, default_value = "xor")]
    pub op: Op,
    /// File holding the shared secret (else $ATOMIK_SYNC_SECRET).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// Milliseconds between ticks (commit local changes, push, status).
    #[arg(long, default_value_t = 100)]
    pub tick_ms: u64,
    /// Most TCP peer connections served at once (more are closed before any handshake).
    #[arg(long, default_value_t = 64)]
    pub max_conns: usize,
    /// On a clean stop, milliseconds to wait for connected peers to acknowledge the last
    /// deltas.
    #[arg(long, default_value_t = 5000)]
    pub drain_ms: u64,
    /// Most live origins held (tests of the cap).
    #[arg(long, hide = true, default_value_t = 4096)]
    pub max_origins: usize,
}

fn data_dir(bank: &str, data: &Option<PathBuf>) -> PathBuf {
    data.clone().unwrap_or_else(|| PathBuf::from("/var/lib/atomik/sync").join(bank))
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn secret(file: Option<&PathBuf>) -> Result<Vec<u8>> {
    let s = match file {
        Some(p) => std::fs::read(p).with_context(|| format!("reading secret file {}", p.display()))?,
        None => std::env::var("ATOMIK_SYNC_SECRET")
            .context(
                "no shared secret: give --secret-file or set ATOMIK_SYNC_SECRET (TCP peers authenticate \
                 with it; on NATS every frame is signed and verified with it)",
            )?
            .into_bytes(),
    };
    let s: Vec<u8> = s.trim_ascii().to_vec();
    if s.len() < 8 {
        bail!("the shared secret must be at least 8 bytes");
    }
    Ok(s)
}

/// Where a daemon exchanges deltas.
enum Transport {
    Tcp { listen: Option<String>, peers: Vec<String> },
    Nats { url: String, group: String, snapshot_every: u64, max_per_subject: i64, auth: Box<NatsAuthArgs> },
}

fn daemon(c: &Common, transport: Transport) -> Result<()> {
    // First of all: a SIGTERM during start-up (recovery included) must still end in a clean
    // stop, which takes the last changes and drains them, not in a crash.
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    let (listen, peers, nats) = match transport {
        Transport::Tcp { listen, peers } => (listen, peers, None),
        Transport::Nats { url, group, snapshot_every, max_per_subject, auth } => {
            (None, Vec::new(), Some((url, group, snapshot_every, max_per_subject, auth)))
        }
    };
    let secret = secret(c.secret_file.as_ref())?;
    let cfg = DaemonConfig {
        bank: c.bank.clone(),
        data: data_dir(&c.bank, &c.data),
        create: c.slots.map(|s| (s, c.op)),
        secret: secret.clone(),
        listen,
        peers,
        tick: Duration::from_millis(c.tick_ms.max(1)),
        ae_every: 10,
        max_conns: c.max_conns,
        drain: Duration::from_millis(c.drain_ms),
        max_origins: c.max_origins.max(1),
        leaving: false,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let data = cfg.data.clone();
    let tick = cfg.tick;
    let d = Daemon::open(cfg, Arc::clone(&stop))?;
    let nats = match nats {
        Some((url, group, every, max, auth)) => {
            Some(start_nats(&d, NatsStart { url, group, data, tick, every, max, auth, secret })?)
        }
        None => None,
    };
    let watcher = Arc::clone(&stop);
    std::thread::spawn(move || loop {
        if STOP.load(Ordering::Relaxed) {
            watcher.store(true, Ordering::Relaxed);
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    });
    d.run()?;
    if let Some(t) = nats {
        t.finish();
    }
    Ok(())
}

/// What the NATS transport is started with.
struct NatsStart {
    url: String,
    group: String,
    data: PathBuf,
    tick: Duration,
    every: u64,
    max: i64,
    auth: Box<NatsAuthArgs>,
    secret: Vec<u8>,
}

#[cfg(feature = "nats")]
fn start_nats(d: &Arc<Daemon>, s: NatsStart) -> Result<atomik::replica::nats::Transport> {
    use atomik::replica::nats::spawn;
    if s.every == 0 || s.max < 2 * s.every as i64 {
        bail!("--nats-max-per-subject must be at least twice --nats-snapshot-every (and that above 0)");
    }
    let mut cfg = nats_config(&s.url, &s.group, s.data, s.secret, *s.auth)?;
    cfg.tick = s.tick;
    cfg.snapshot_every = s.every;
    cfg.max_per_subject = s.max;
    spawn(Arc::clone(d), cfg).context("starting the NATS transport thread")
}

/// The NATS transport's configuration, with the server credentials checked.
#[cfg(feature = "nats")]
fn nats_config(
    url: &str,
    group: &str,
    data: PathBuf,
    secret: Vec<u8>,
    a: NatsAuthArgs,
) -> Result<atomik::replica::nats::NatsConfig> {
    use atomik::replica::nats_connect::NatsAuth;
    let mut cfg = atomik::replica::nats::NatsConfig::new(url, group, data, secret);
    cfg.auth = NatsAuth {
        creds: a.nats_creds,
        nkey: a.nats_nkey,
        user: a.nats_user,
        password_file: a.nats_password_file,
        token_file: a.nats_token_file,
        tls_ca: a.nats_tls_ca,
        tls_cert: a.nats_tls_cert,
        tls_key: a.nats_tls_key,
    };
    cfg.auth.check()?;
    Ok(cfg)
}

/// `sync leave --nats`.
#[cfg(feature = "nats")]
#[allow(clippy::too_many_arguments)]
fn leave_nats(
    bank: &str,
    url: &str,
    group: &str,
    data: PathBuf,
    secret: Vec<u8>,
    auth: &NatsAuthArgs,
    adopter: Option<u64>,
    timeout: Duration,
) -> Result<Result<atomik::replica::leave::LeaveReport, atomik::replica::leave::LeaveError>> {
    use atomik::replica::nats_leave::{leave_nats, NatsLeaveOptions};
    let nats = nats_config(url, group, data, secret, auth.clone())?;
    Ok(leave_nats(&NatsLeaveOptions { bank: bank.to_string(), nats, adopter, timeout }))
}

#[cfg(not(feature = "nats"))]
#[allow(clippy::too_many_arguments)]
fn leave_nats(
    _: &str,
    _: &str,
    _: &str,
    _: PathBuf,
    _: Vec<u8>,
    _: &NatsAuthArgs,
    _: Option<u64>,
    _: Duration,
) -> Result<Result<atomik::replica::leave::LeaveReport, atomik::replica::leave::LeaveError>> {
    bail!("this atomikctl was built without the `nats` feature")
}

/// An origin id as `sync status` prints it: 16 hex digits (a `0x` prefix is accepted).
fn parse_origin(s: &str) -> Result<u64, String> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    u64::from_str_radix(h, 16)
        .ok()
        .filter(|&o| o != 0)
        .ok_or_else(|| format!("{s:?} is not an origin id (16 hex digits, as `atomikctl sync status` shows)"))
}

#[cfg(not(feature = "nats"))]
fn start_nats(_: &Arc<Daemon>, _: NatsStart) -> Result<NoNats> {
    bail!("this atomikctl was built without the `nats` feature")
}

#[cfg(not(feature = "nats"))]
struct NoNats;

#[cfg(not(feature = "nats"))]
impl NoNats {
    fn finish(self) {}
}

/// Runs a `sync` subcommand.
pub fn run(cmd: &SyncCmd, json: bool) -> Result<()> {
    match cmd {
        SyncCmd::Serve { common, listen, peer } => {
            daemon(common, Transport::Tcp { listen: Some(listen.clone()), peers: peer.clone() })
        }
        SyncCmd::Join {
            common,
            nats: Some(url),
            nats_auth,
            group,
            nats_snapshot_every,
            nats_max_per_subject,
            ..
        } => daemon(
            common,
            Transport::Nats {
                url: url.clone(),
                group: group.clone().unwrap_or_else(|| common.bank.clone()),
                snapshot_every: *nats_snapshot_every,
                max_per_subject: *nats_max_per_subject,
                auth: nats_auth.clone(),
            },
        ),
        SyncCmd::Join { common, peer, nats: None, .. } => {
            daemon(common, Transport::Tcp { listen: None, peers: peer.clone() })
        }
        SyncCmd::Recover { bank, data } => {
            let dir = data_dir(bank, data);
            let start = atomik::replica::daemon::recover(bank, &dir)?;
            if json {
                let start = start.map(|s| format!("{s:?}"));
                println!("{}", serde_json::json!({"bank": bank, "data": dir, "start": start}));
            } else if start.is_none() {
                println!(
                    "bank {bank:?} does not exist: nothing to recover; start `atomikctl sync` (with --slots and \
                     --op) to create it and rebuild it from the peers"
                );
            } else {
                println!(
                    "bank {bank:?} rebound to a new replica in {}: start `atomikctl sync` again to rebuild it \
                     from the peers",
                    dir.display()
                );
            }
            Ok(())
        }
        SyncCmd::Leave { bank, data, peer, nats, group, adopter, nats_auth, secret_file, timeout_s } => {
            let dir = data_dir(bank, data);
            let secret = secret(secret_file.as_ref())?;
            let timeout = Duration::from_secs(*timeout_s);
            let r = match (peer, nats) {
                (Some(peer), _) => atomik::replica::leave::leave(&atomik::replica::leave::LeaveOptions {
                    bank: bank.clone(),
                    data: dir.clone(),
                    peer: peer.clone(),
                    secret,
                    timeout,
                }),
                (None, Some(url)) => {
                    let group = group.clone().unwrap_or_else(|| bank.clone());
                    leave_nats(bank, url, &group, dir.clone(), secret, nats_auth, *adopter, timeout)?
                }
                (None, None) => unreachable!("clap requires --peer or --nats"),
            };
            let r = r.map_err(|e| match e {
                atomik::replica::leave::LeaveError::Mirror(
                    atomik::replica::mirror::MirrorError::Persist(
                        atomik::replica::persist::PersistError::Locked { path },
                    ),
                ) => anyhow::anyhow!(
                    "{}: a sync daemon is running on this replica: stop it (SIGTERM) before it leaves",
                    path.display()
                ),
                e => e.into(),
            })?;
            let l = r.left;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "bank": bank, "data": dir, "origin": format!("{:016x}", l.origin),
                        "adopter": format!("{:016x}", l.adopter), "version": l.version, "already": r.already,
                    })
                );
            } else if r.already {
                println!(
                    "replica {:016x} of bank {bank:?} had already left (adopted by {:016x})",
                    l.origin, l.adopter
                );
            } else if l.adopter == 0 {
                println!("replica {:016x} of bank {bank:?} left: it never produced a delta", l.origin);
            } else {
                println!(
                    "replica {:016x} of bank {bank:?} left: replica {:016x} adopted it at version {}",
                    l.origin, l.adopter, l.version
                );
            }
            Ok(())
        }
        SyncCmd::Status { bank, data } => {
            let path = data_dir(bank, data).join("status.json");
            let s = std::fs::read_to_string(&path).with_context(|| {
                format!("{}: no status (is a sync daemon running for bank {bank}?)", path.display())
            })?;
            if json {
                print!("{s}");
            } else {
                // Flatten the one-line JSON into `key: value` lines.
                let s = s.trim();
                let body = s.strip_prefix('{').and_then(|b| b.strip_suffix('}')).unwrap_or(s);
                for part in split_top(body) {
                    if let Some((k, v)) = part.split_once(':') {
                        println!("{:<13} {}", k.trim_matches('"'), v);
                    }
                }
            }
            Ok(())
        }
    }
}

/// Splits on commas that are not nested in brackets or strings.
fn split_top(s: &str) -> Vec<&str> {
    let (mut depth, mut in_str, mut start, mut out) = (0i32, false, 0, Vec::new());
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'"' if i == 0 || b[i - 1] != b'\\' => in_str = !in_str,
            b'[' | b'{' if !in_str => depth += 1,
            b']' | b'}' if !in_str => depth -= 1,
            b',' if !in_str && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}
