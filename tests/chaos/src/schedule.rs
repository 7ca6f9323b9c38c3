//! The nemesis schedule: a pure function of the seed, so a failing run can be replayed.
//!
//! A schedule is a list of fault *episodes*, each a short script of primitive steps on one
//! target that starts from a running target and leaves it running again (every kill is
//! followed by a restart). Episodes on the same target never overlap, so each step finds the
//! target in the state its episode left it in; episodes on different targets overlap freely
//! (two or three replicas down at once is part of the point). Steps are planned times: the
//! executor runs each no earlier than planned, and a step that waits (for an exit) delays the
//! ones after it rather than reordering them.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::faults::{FaultKind, Transport};

/// No fault in the first second: the replicas connect and create their banks.
pub const WARMUP_MS: u64 = 1000;
/// A target rests this long between two episodes (so a restart gets a moment to recover
/// before the next fault, except in `kill-startup`, which aims at exactly that moment).
pub const SETTLE_MS: u64 = 500;

/// How long a leave episode keeps its replica from other episodes (a leave takes well under a
/// second unless its adopter is down or catching up).
pub const LEAVE_RESERVE_MS: u64 = 3000;

/// One primitive step of the nemesis. Replicas are named by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// SIGKILL.
    Kill(usize),
    /// SIGTERM (a clean stop), without waiting.
    Term(usize),
    /// Wait (bounded) until a daemon sent SIGTERM has exited.
    WaitExit(usize),
    /// Spawn the daemon.
    Start(usize),
    /// SIGSTOP.
    Pause(usize),
    /// SIGCONT.
    Resume(usize),
    /// Stop producers from ACCUMing into this replica's bank, waiting for those in flight: the
    /// start of a simulated reboot, in which the machine's producers go down too.
    CloseGate(usize),
    /// Let producers in again.
    OpenGate(usize),
    /// Wait (bounded) until the daemon has written its status twice, i.e. finished a tick that
    /// began after the gate closed: what it acknowledged is committed (see [`FaultKind::BankDelete`]).
    WaitQuiet(usize),
    /// Delete the bank file from the shared-memory directory.
    DeleteBank(usize),
    /// `rm -rf` of the replica's `--data` directory.
    RemoveData(usize),
    /// `atomikctl sync recover --bank B --data D` (must exit 0).
    Recover(usize),
    /// Starts `atomikctl sync leave` in the background (retried until it exits 0, within a
    /// bound); when it is done, the nemesis removes the retired directory, runs `sync
    /// recover` and restarts the daemon. Other steps on the replica wait for it.
    Leave(usize),
    /// The end of a leave episode's reservation of its replica (logs a leave still running).
    LeaveDone(usize),
    /// SIGKILL of nats-server.
    NatsKill,
    /// Start nats-server again on the same port and store directory.
    NatsStart,
}

/// What an episode is aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Replica(usize),
    Nats,
}

/// One fault, as planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Episode {
    pub kind: FaultKind,
    pub target: Target,
    pub at_ms: u64,
    pub end_ms: u64,
    /// A readable summary for the nemesis log, e.g. "c2: SIGTERM, kill -9 after 7 ms".
    pub note: String,
}

/// A planned step: `action` at `at_ms` after the run started, part of episode `episode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub at_ms: u64,
    pub episode: usize,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub episodes: Vec<Episode>,
    /// Sorted by time; steps of one episode keep their order.
    pub steps: Vec<Step>,
}

/// What a schedule is generated from.
#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    pub duration_ms: u64,
    pub transport: Transport,
    /// Kinds to draw from; those that do not apply to the transport are ignored.
    pub kinds: Vec<FaultKind>,
    pub replicas: usize,
}

/// The schedule for `plan`: the same plan always gives the same schedule. Every episode ends
/// (its last restart is planned) by `plan.duration_ms`.
pub fn generate(plan: &Plan) -> Schedule {
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
    let kinds: Vec<FaultKind> = FaultKind::ALL
        .into_iter()
        .filter(|k| plan.kinds.contains(k) && k.applies_to(plan.transport))
        .collect();
    let mut free_at = vec![0u64; plan.replicas];
    let mut nats_free_at = 0u64;
    let mut s = Schedule { episodes: Vec::new(), steps: Vec::new() };
    let mut t = WARMUP_MS;
    while t < plan.duration_ms && !kinds.is_empty() && plan.replicas > 0 {
        let kind = *kinds.choose(&mut rng).expect("non-empty");
        let target = match kind {
            FaultKind::NatsRestart => (nats_free_at <= t).then_some(Target::Nats),
            FaultKind::KillHub => (free_at[0] <= t).then_some(Target::Replica(0)),
            _ => {
                // A replica leaves by asking c0 (the hub over TCP), which therefore never
                // leaves nor loses its directory: an adopter whose origin is gone before it
                // adopted strands the request (docs/replication.md, "Leaving the cluster").
                let leaves = plan.kinds.contains(&FaultKind::Leave);
                let hub_stays = kind == FaultKind::Leave || (kind == FaultKind::DirLoss && leaves);
                let free: Vec<usize> =
                    (0..plan.replicas).filter(|&r| free_at[r] <= t && !(hub_stays && r == 0)).collect();
                free.choose(&mut rng).map(|&r| Target::Replica(r))
            }
        };
        let gap = rng.gen_range(150..900);
        let Some(target) = target else {
            t += gap;
            continue;
        };
        let (script, note) = episode(kind, target, &mut rng);
        let len = script.last().map_or(0, |(o, _)| *o);
        if t + len <= plan.duration_ms {
            let id = s.episodes.len();
            s.steps.extend(script.into_iter().map(|(o, action)| Step { at_ms: t + o, episode: id, action }));
            s.episodes.push(Episode { kind, target, at_ms: t, end_ms: t + len, note });
            match target {
                Target::Nats => nats_free_at = t + len + SETTLE_MS,
                Target::Replica(r) => free_at[r] = t + len + SETTLE_MS,
            }
        }
        t += gap;
    }
    // Stable: equal times keep episode order, and each episode's steps their script order.
    s.steps.sort_by_key(|st| st.at_ms);
    s
}

fn name(target: Target) -> String {
    match target {
        Target::Replica(r) => format!("c{r}"),
        Target::Nats => "nats-server".into(),
    }
}

/// The script of one episode: (offset ms from its start, step), offsets non-decreasing.
fn episode(kind: FaultKind, target: Target, rng: &mut ChaCha8Rng) -> (Vec<(u64, Action)>, String) {
    use Action::*;
    let who = name(target);
    let Target::Replica(r) = target else {
        let down = rng.gen_range(200..3000);
        return (vec![(0, NatsKill), (down, NatsStart)], format!("{who}: kill -9, restart after {down} ms"));
    };
    let restart = rng.gen_range(100..2000);
    match kind {
        FaultKind::NatsRestart => unreachable!("nats-restart is aimed at the server"),
        FaultKind::Kill | FaultKind::KillHub => {
            (vec![(0, Kill(r)), (restart, Start(r))], format!("{who}: kill -9, restart after {restart} ms"))
        }
        FaultKind::KillStartup => {
            let mut v = vec![(0, Kill(r))];
            let mut o = 0;
            let mut after = Vec::new();
            for _ in 0..rng.gen_range(1..=3) {
                o += rng.gen_range(100..800);
                v.push((o, Start(r)));
                let x = rng.gen_range(0..300);
                o += x;
                v.push((o, Kill(r)));
                after.push(x.to_string());
            }
            o += restart;
            v.push((o, Start(r)));
            (v, format!("{who}: kill -9, then kill -9 {} ms after spawning, then restart", after.join("/")))
        }
        FaultKind::KillShutdown => {
            let k = rng.gen_range(1..20);
            (
                vec![(0, Term(r)), (k, Kill(r)), (k + restart, Start(r))],
                format!("{who}: SIGTERM, kill -9 after {k} ms, restart after {restart} ms"),
            )
        }
        FaultKind::Term => (
            vec![(0, Term(r)), (0, WaitExit(r)), (restart, Start(r))],
            format!("{who}: SIGTERM, restart {restart} ms after the exit"),
        ),
        FaultKind::Pause => {
            let p = rng.gen_range(1000..4000);
            (vec![(0, Pause(r)), (p, Resume(r))], format!("{who}: SIGSTOP for {p} ms"))
        }
        FaultKind::BankDelete => {
            let hard = rng.gen_bool(0.5);
            let mut v = vec![(0, CloseGate(r))];
            v.extend(if hard { [(0, WaitQuiet(r)), (0, Kill(r))] } else { [(0, Term(r)), (0, WaitExit(r))] });
            v.extend([(0, DeleteBank(r)), (restart, Start(r)), (restart, OpenGate(r))]);
            let how = if hard { "kill -9" } else { "SIGTERM" };
            (v, format!("{who}: reboot ({how}, bank file deleted), restart after {restart} ms"))
        }
        FaultKind::DirLoss => (
            vec![(0, Term(r)), (0, WaitExit(r)), (0, RemoveData(r)), (0, Recover(r)), (restart, Start(r))],
            format!("{who}: SIGTERM, rm -rf --data, sync recover, restart after {restart} ms"),
        ),
        FaultKind::Leave => (
            vec![(0, Term(r)), (0, WaitExit(r)), (0, Leave(r)), (LEAVE_RESERVE_MS, LeaveDone(r))],
            format!("{who}: SIGTERM, sync leave, then rm -rf --data, sync recover and restart"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(seed: u64, transport: Transport) -> Plan {
        Plan { seed, duration_ms: 25_000, transport, kinds: FaultKind::ALL.to_vec(), replicas: 4 }
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        let a = generate(&plan(42, Transport::Tcp));
        assert_eq!(a, generate(&plan(42, Transport::Tcp)));
        assert_ne!(a, generate(&plan(43, Transport::Tcp)));
        assert!(a.episodes.len() >= 10, "only {} faults in 25 s", a.episodes.len());
    }

    /// Replays the steps against a model of each target and checks every step finds its
    /// target in a state where it makes sense, and that everything is up again at the end.
    #[test]
    fn every_step_is_valid_in_order_and_everything_ends_up_running() {
        #[derive(Clone, Copy, PartialEq, Debug)]
        enum St {
            Up,
            Stopping,
            Down,
            Paused,
            Leaving,
        }
        for seed in 0..200 {
            for transport in [Transport::Tcp, Transport::Nats] {
                let p = plan(seed, transport);
                let s = generate(&p);
                let mut st = [St::Up; 4];
                let (mut nats_up, mut gates) = (true, [true; 4]);
                let mut last = 0;
                for step in &s.steps {
                    assert!(step.at_ms >= last && step.at_ms <= p.duration_ms, "seed {seed}: {step:?}");
                    last = step.at_ms;
                    use Action::*;
                    use St::*;
                    // (replica, states it may be in, state after); gates and server aside.
                    let (r, from, to): (usize, &[St], St) = match step.action {
                        Kill(r) => (r, &[Up, Stopping], Down),
                        Term(r) => (r, &[Up], Stopping),
                        WaitExit(r) => (r, &[Stopping], Down),
                        Start(r) => (r, &[Down], Up),
                        Pause(r) => (r, &[Up], Paused),
                        Resume(r) => (r, &[Paused], Up),
                        WaitQuiet(r) => (r, if gates[r] { &[] } else { &[Up] }, Up),
                        CloseGate(r) | OpenGate(r) => {
                            let closing = matches!(step.action, CloseGate(_));
                            assert_eq!(gates[r], closing, "seed {seed}: {step:?}");
                            gates[r] = !closing;
                            continue;
                        }
                        DeleteBank(r) | RemoveData(r) | Recover(r) => (r, &[Down], Down),
                        Leave(r) => (r, &[Down], Leaving),
                        LeaveDone(r) => (r, &[Leaving], Up),
                        NatsKill | NatsStart => {
                            let starting = step.action == NatsStart;
                            assert!(
                                transport == Transport::Nats && nats_up != starting,
                                "seed {seed}: {step:?}"
                            );
                            nats_up = starting;
                            continue;
                        }
                    };
                    assert!(from.contains(&st[r]), "seed {seed} {transport:?}: {step:?} in {st:?}");
                    st[r] = to;
                }
                assert_eq!(st, [St::Up; 4], "seed {seed}");
                assert!(nats_up && gates == [true; 4], "seed {seed}");
            }
        }
    }

    #[test]
    fn the_adopter_c0_never_leaves_nor_loses_its_directory() {
        for seed in 0..100 {
            for transport in [Transport::Tcp, Transport::Nats] {
                let s = generate(&plan(seed, transport));
                assert!(s.episodes.iter().any(|e| e.kind == FaultKind::Leave) || seed > 0);
                for e in &s.episodes {
                    let hits_c0 = e.target == Target::Replica(0);
                    assert!(!(hits_c0 && matches!(e.kind, FaultKind::Leave | FaultKind::DirLoss)), "{e:?}");
                }
            }
        }
    }

    #[test]
    fn episodes_on_one_target_do_not_overlap_and_start_after_the_warmup() {
        for seed in 0..100 {
            let s = generate(&plan(seed, Transport::Nats));
            for (i, a) in s.episodes.iter().enumerate() {
                assert!(a.at_ms >= WARMUP_MS && a.end_ms <= 25_000);
                for b in &s.episodes[i + 1..] {
                    if a.target == b.target {
                        assert!(b.at_ms >= a.end_ms + SETTLE_MS, "seed {seed}: {a:?} overlaps {b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn only_enabled_kinds_that_apply_to_the_transport_are_drawn() {
        let mut p = plan(7, Transport::Tcp);
        p.kinds = vec![FaultKind::KillHub, FaultKind::NatsRestart, FaultKind::Pause];
        let s = generate(&p);
        assert!(s.episodes.iter().all(|e| matches!(e.kind, FaultKind::KillHub | FaultKind::Pause)));
        assert!(s.episodes.iter().any(|e| e.kind == FaultKind::KillHub));
        assert!(s
            .episodes
            .iter()
            .filter(|e| e.kind == FaultKind::KillHub)
            .all(|e| e.target == Target::Replica(0)));
        p.transport = Transport::Nats;
        let s = generate(&p);
        assert!(s.episodes.iter().all(|e| matches!(e.kind, FaultKind::NatsRestart | FaultKind::Pause)));
        assert!(s.episodes.iter().any(|e| e.target == Target::Nats));
        p.kinds = vec![FaultKind::KillHub];
        assert!(generate(&p).episodes.is_empty(), "no applicable kind: no fault");
    }

    #[test]
    fn kill_startup_kills_within_300_ms_of_a_spawn() {
        let mut p = plan(11, Transport::Tcp);
        p.kinds = vec![FaultKind::KillStartup];
        let s = generate(&p);
        assert!(!s.episodes.is_empty());
        for (id, _) in s.episodes.iter().enumerate() {
            let steps: Vec<&Step> = s.steps.iter().filter(|st| st.episode == id).collect();
            for w in steps.windows(2) {
                if let (Action::Start(_), Action::Kill(_)) = (w[0].action, w[1].action) {
                    assert!(w[1].at_ms - w[0].at_ms < 300, "{w:?}");
                }
            }
            assert!(matches!(steps.last().unwrap().action, Action::Start(_)));
        }
    }

    #[test]
    fn every_kind_is_drawn_over_a_long_run() {
        for transport in [Transport::Tcp, Transport::Nats] {
            let mut p = plan(5, transport);
            p.duration_ms = 300_000;
            let s = generate(&p);
            for k in FaultKind::ALL.into_iter().filter(|k| k.applies_to(transport)) {
                assert!(s.episodes.iter().any(|e| e.kind == k), "{k:?} never drawn on {transport:?}");
            }
        }
    }
}
