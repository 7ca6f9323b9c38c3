//! The transports and the kinds of fault the nemesis can inject, and which apply where.

use serde::Serialize;

/// How the replicas exchange deltas in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// c0 is `sync serve --listen`, c1..c3 `sync join --peer` it.
    Tcp,
    /// Every replica is `sync join --nats URL --group G` against one nats-server.
    Nats,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Nats => "nats",
        }
    }
}

/// One kind of fault (`--faults` spells them as listed by [`FaultKind::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// `kill -9` of a daemon at a random time, restart after a short delay.
    Kill,
    /// `kill -9`, then restart and `kill -9` again 0–300 ms after spawning (during
    /// start-up/recovery), one to three times, then a restart that is left alone.
    KillStartup,
    /// SIGTERM, then `kill -9` a few ms later (during the clean stop), restart.
    KillShutdown,
    /// SIGTERM, wait for the exit, restart.
    Term,
    /// SIGSTOP for one to four seconds, then SIGCONT.
    Pause,
    /// `kill -9` of the TCP hub (c0, the `serve` node), restart (TCP only).
    KillHub,
    /// `kill -9` of nats-server, restart on the same port and store (NATS only).
    NatsRestart,
    /// Simulated reboot: stop the daemon (SIGTERM or `kill -9`), delete its bank file,
    /// restart it; it must rebuild the bank.
    BankDelete,
    /// SIGTERM, `rm -rf` of the replica directory, `atomikctl sync recover`, restart.
    DirLoss,
    /// SIGTERM, `atomikctl sync leave` (a peer adopts the replica's origin), `rm -rf` of the
    /// retired directory, `sync recover`, restart: the bank comes back under a new origin.
    Leave,
}

impl FaultKind {
    pub const ALL: [FaultKind; 10] = [
        FaultKind::Kill,
        FaultKind::KillStartup,
        FaultKind::KillShutdown,
        FaultKind::Term,
        FaultKind::Pause,
        FaultKind::KillHub,
        FaultKind::NatsRestart,
        FaultKind::BankDelete,
        FaultKind::DirLoss,
        FaultKind::Leave,
    ];

    /// The name used in `--faults`, logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::KillStartup => "kill-startup",
            FaultKind::KillShutdown => "kill-shutdown",
            FaultKind::Term => "term",
            FaultKind::Pause => "pause",
            FaultKind::KillHub => "kill-hub",
            FaultKind::NatsRestart => "nats-restart",
            FaultKind::BankDelete => "bank-delete",
            FaultKind::DirLoss => "dir-loss",
            FaultKind::Leave => "leave",
        }
    }

    /// Whether the fault means anything on `t` (there is no hub on NATS, no server on TCP).
    pub fn applies_to(self, t: Transport) -> bool {
        match self {
            FaultKind::KillHub => t == Transport::Tcp,
            FaultKind::NatsRestart => t == Transport::Nats,
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn names_are_the_value_enum_spellings() {
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::from_str(k.name(), false), Ok(k));
        }
        assert_eq!(FaultKind::value_variants().len(), FaultKind::ALL.len());
    }

    #[test]
    fn hub_and_server_faults_apply_to_one_transport_each() {
        assert!(FaultKind::KillHub.applies_to(Transport::Tcp));
        assert!(!FaultKind::KillHub.applies_to(Transport::Nats));
        assert!(FaultKind::NatsRestart.applies_to(Transport::Nats));
        assert!(!FaultKind::NatsRestart.applies_to(Transport::Tcp));
        assert!(
            FaultKind::DirLoss.applies_to(Transport::Tcp) && FaultKind::DirLoss.applies_to(Transport::Nats)
        );
    }
}
