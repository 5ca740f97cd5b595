//! LAN gossip at 1,000 and 10,000 agents, simulated: `sekisho::gossip::sim` runs one real foca
//! instance per agent with Sekisho's LAN configuration (`Timing::lan()` through the driver's
//! conversion, resized to each agent's live count), in virtual time with a seeded RNG and a
//! 0.2-1 ms one-way latency. Per pool size, in one run:
//!
//! 1. steady state: after a warm-up, datagrams and bytes (as foca encodes them) per agent per
//!    second over a window, no loss;
//! 2. failure detection: crashes of random agents, one at a time; for each, the time until
//!    every survivor has declared it down (foca's `MemberDown`);
//! 3. join convergence: a new agent joins through one member with a push-pull, as
//!    `Gossip::join` does; time until it lists every member and every member lists it;
//! 4. false positives: 1% loss on every datagram from then on; suspicions of live agents and
//!    live agents declared down.
//!
//! Run with `cargo bench --bench gossip_sim`; `-- --quick` (or `GOSSIP_SIM_QUICK=1`) runs 50
//! and 200 agents in seconds; `GOSSIP_SIM_SEED` changes the seed. Progress goes to stderr, the
//! Markdown report to stdout and to /tmp/gossip-sim-report.md.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use sekisho::gossip::Timing;
use sekisho::gossip::sim::{
    Detection, FRAME_ENCRYPTED, FRAME_PLAIN, FalsePositives, JoinSpread, Sim, SimConfig, Traffic,
    coordinate_datagram_sizes,
};

const REPORT: &str = "/tmp/gossip-sim-report.md";
const LOSS: f64 = 0.01;
const SEC: Duration = Duration::from_secs(1);

struct Plan {
    agents: usize,
    warmup: Duration,
    steady: Duration,
    crashes: usize,
    loss_run: Duration,
}

struct LossRun {
    simulated: Duration,
    live: usize,
    traffic: Traffic,
    fp: FalsePositives,
}

struct Outcome {
    agents: usize,
    bootstrap_wall: Duration,
    wall: Duration,
    simulated: Duration,
    events: u64,
    steady: Traffic,
    steady_window: Duration,
    steady_live: usize,
    detections: Vec<Detection>,
    join: Option<JoinSpread>,
    joiner: JoinerLoad,
    loss: LossRun,
}

/// What the joiner sends after its join: it re-gossips every member it merged.
#[derive(Default)]
struct JoinerLoad {
    agent: Option<usize>,
    joined_at: Duration,
    bytes_per_sec: f64,
    backlog_at_join: usize,
    /// When its backlog first emptied (checked every simulated second), and the bytes it had
    /// sent by then.
    drained: Option<(Duration, u64)>,
}

impl JoinerLoad {
    fn check(&mut self, s: &Sim) {
        if let Some(j) = self.agent.filter(|j| self.drained.is_none() && s.updates_backlog(*j) == 0) {
            self.drained = Some((s.now() - self.joined_at, s.sent_by(j).1));
        }
    }
}

fn main() {
    let quick =
        std::env::args().any(|a| a == "--quick") || std::env::var("GOSSIP_SIM_QUICK").is_ok_and(|v| v == "1");
    let seed = std::env::var("GOSSIP_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_250_601);
    let plans = if quick { quick_plans() } else { full_plans() };
    let start = Instant::now();
    let outcomes: Vec<Outcome> = plans.iter().map(|p| run(p, seed)).collect();
    let report = report(&outcomes, seed, quick, start.elapsed());
    println!("{report}");
    match std::fs::write(REPORT, &report) {
        Ok(()) => eprintln!("report written to {REPORT}"),
        Err(e) => eprintln!("writing {REPORT}: {e}"),
    }
}

fn full_plans() -> Vec<Plan> {
    vec![
        Plan { agents: 1_000, warmup: 20 * SEC, steady: 60 * SEC, crashes: 30, loss_run: 3_600 * SEC },
        Plan { agents: 10_000, warmup: 10 * SEC, steady: 30 * SEC, crashes: 8, loss_run: 300 * SEC },
    ]
}

fn quick_plans() -> Vec<Plan> {
    vec![
        Plan { agents: 50, warmup: 5 * SEC, steady: 10 * SEC, crashes: 3, loss_run: 60 * SEC },
        Plan { agents: 200, warmup: 5 * SEC, steady: 10 * SEC, crashes: 3, loss_run: 60 * SEC },
    ]
}

fn run(plan: &Plan, seed: u64) -> Outcome {
    let n = plan.agents;
    let wall = Instant::now();
    eprintln!("--- {n} agents: bootstrap (every agent learns every other one)");
    let mut s = Sim::new(SimConfig::new(n, seed));
    let bootstrap_wall = wall.elapsed();
    eprintln!("    done in {bootstrap_wall:.1?}; warm-up {:?}", plan.warmup);
    s.run_for(plan.warmup);
    let (before, steady_live) = (s.traffic(), s.live());
    s.run_for(plan.steady);
    let steady = s.traffic().since(&before);
    eprintln!(
        "--- {n} agents: steady state measured over {:?} ({:.1?} wall so far)",
        plan.steady,
        wall.elapsed()
    );
    let detections = crashes(&mut s, plan);
    let (join, mut joiner) = join(&mut s, n);
    let loss = loss_run(&mut s, plan.loss_run, &mut joiner);
    Outcome {
        agents: n,
        bootstrap_wall,
        wall: wall.elapsed(),
        simulated: s.now(),
        events: s.events(),
        steady,
        steady_window: plan.steady,
        steady_live,
        detections,
        join,
        joiner,
        loss,
    }
}

fn crashes(s: &mut Sim, plan: &Plan) -> Vec<Detection> {
    let timing = Timing::lan();
    let mut out = Vec::new();
    for k in 0..plan.crashes {
        let Some(victim) = s.pick_live(plan.agents) else { break };
        let wall = Instant::now();
        s.crash(victim);
        let deadline = s.now() + timing.detection_bound(s.live() + 1) * 3;
        let took = s.run_until_detected(victim, deadline);
        eprintln!(
            "--- crash {}/{}: agent {victim} declared down by every survivor after {took:.2?} ({:.1?} wall)",
            k + 1,
            plan.crashes,
            wall.elapsed()
        );
        out.extend(s.detection(victim));
        s.run_for(2 * SEC);
    }
    out
}

/// Joins a new agent; returns its spread and what it sent over its first 10 s.
fn join(s: &mut Sim, n: usize) -> (Option<JoinSpread>, JoinerLoad) {
    let Some(seed) = s.pick_live(n) else { return (None, JoinerLoad::default()) };
    let Some(j) = s.join(seed) else { return (None, JoinerLoad::default()) };
    let at = s.now();
    let took = s.run_until_joined(j, at + 60 * SEC);
    eprintln!("--- join of agent {j} through {seed}: converged after {took:.2?}");
    let backlog_at_join = s.updates_backlog(j);
    s.run_until(at + 10 * SEC);
    let mut load = JoinerLoad {
        agent: Some(j),
        joined_at: at,
        bytes_per_sec: s.sent_by(j).1 as f64 / 10.0,
        backlog_at_join,
        drained: None,
    };
    load.check(s);
    (s.join_spread(j), load)
}

/// Runs with loss, one simulated second at a time (watching the joiner's backlog).
fn loss_run(s: &mut Sim, length: Duration, joiner: &mut JoinerLoad) -> LossRun {
    s.set_loss(LOSS);
    let (before, fp_before, live) = (s.traffic(), s.false_positives(), s.live());
    let (start, wall) = (s.now(), Instant::now());
    while s.now() < start + length {
        s.run_for(SEC.min(start + length - s.now()));
        joiner.check(s);
        if !(s.now() - start).as_secs().is_multiple_of(60) && s.now() < start + length {
            continue;
        }
        let fp = s.false_positives();
        eprintln!(
            "--- {:.0}% loss: {:?} of {:?} simulated, {} suspicions, {} declarations ({:.1?} wall)",
            LOSS * 100.0,
            s.now() - start,
            length,
            fp.suspicions - fp_before.suspicions,
            fp.declarations - fp_before.declarations,
            wall.elapsed()
        );
    }
    s.set_loss(0.0);
    let fp = s.false_positives();
    LossRun {
        simulated: length,
        live,
        traffic: s.traffic().since(&before),
        fp: FalsePositives {
            suspicions: fp.suspicions - fp_before.suspicions,
            declarations: fp.declarations - fp_before.declarations,
            members_declared: fp.members_declared - fp_before.members_declared,
            rejoins: fp.rejoins - fp_before.rejoins,
        },
    }
}

fn secs(d: Duration) -> String {
    if d < SEC { format!("{:.1} ms", d.as_secs_f64() * 1000.0) } else { format!("{:.2} s", d.as_secs_f64()) }
}

/// The `p` quantile (nearest rank) of sorted values.
fn quantile(sorted: &[Duration], p: f64) -> Option<Duration> {
    let last = sorted.len().checked_sub(1)?;
    sorted.get(((last as f64) * p).round() as usize).copied()
}

fn stats(mut v: Vec<Duration>) -> (String, String, String) {
    v.sort();
    let f = |d: Option<Duration>| d.map_or("-".to_owned(), secs);
    (f(quantile(&v, 0.5)), f(quantile(&v, 0.99)), f(v.last().copied()))
}

fn median(v: impl Iterator<Item = Duration>) -> String {
    stats(v.collect()).0
}

fn report(outcomes: &[Outcome], seed: u64, quick: bool, wall: Duration) -> String {
    let mut r = String::new();
    let lan = Timing::lan();
    let _ = writeln!(r, "# Gossip simulation: foca with Sekisho's LAN configuration\n");
    let _ = writeln!(
        r,
        "Virtual time, seed {seed}{}, one-way latency 0.2-1 ms uniform, `Timing::lan()` (probe {:?}, \
         probe timeout {:?}, gossip {:?} to {} members, {} indirect probes, suspicion multiplier {}, \
         retransmit multiplier {}, push-pull {:?} scaled as memberlist). Every agent is a real `foca` \
         instance; identities encode byte for byte as a client agent's `NodeIdentity` (name, address, \
         generation and Consul's tags). Total wall time {:.0?} (release).\n",
        if quick { " (quick mode: small pools)" } else { "" },
        lan.probe_interval,
        lan.probe_timeout,
        lan.gossip_interval,
        lan.gossip_nodes,
        lan.indirect_checks,
        lan.suspicion_mult,
        lan.retransmit_mult,
        lan.push_pull_interval,
        wall
    );
    detection_table(&mut r, outcomes, &lan);
    loss_table(&mut r, outcomes);
    join_table(&mut r, outcomes);
    traffic_table(&mut r, outcomes, &lan);
    runs_table(&mut r, outcomes);
    r
}

fn detection_table(r: &mut String, outcomes: &[Outcome], lan: &Timing) {
    let _ = writeln!(r, "## 1. Failure detection (crash → every survivor declares it down)\n");
    let _ = writeln!(
        r,
        "| agents | crashes | suspicion timeout `4 × max(1, log10 n) × 1 s` | `detection_bound` | first \
         suspicion (median) | first declaration (median) | all survivors: median | p99 | max | per \
         survivor: median | p99 | max |"
    );
    let _ = writeln!(r, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for o in outcomes {
        let d = &o.detections;
        let all: Vec<Duration> = d.iter().filter_map(|d| d.all_declared).collect();
        let undetected = d.len() - all.len();
        let (m, p99, max) = stats(all);
        let (sm, sp99, smax) = stats(d.iter().flat_map(|d| d.per_survivor.iter().copied()).collect());
        let _ = writeln!(
            r,
            "| {} | {}{} | {} | {} | {} | {} | {m} | {p99} | {max} | {sm} | {sp99} | {smax} |",
            o.agents,
            d.len(),
            if undetected > 0 { format!(" ({undetected} not detected by all)") } else { String::new() },
            secs(lan.suspicion_timeout(o.agents)),
            secs(lan.detection_bound(o.agents)),
            median(d.iter().filter_map(|d| d.first_suspected)),
            median(d.iter().filter_map(|d| d.first_declared)),
        );
    }
    let _ = writeln!(
        r,
        "\nThe first suspicion comes when some survivor's probe of the dead agent fails (its probe \
         round plus the 1 s probe period); the first declaration exactly one suspicion timeout later; \
         the rest is dissemination. memberlist (perf-notes, DefaultLANConfig, median over survivors): \
         5.70 s at 10 nodes, 8.74 s at 50, 9.64 s at 100, i.e. the formula plus 1.6-2 s; the formula \
         gives {} at 1,000 and {} at 10,000.\n",
        secs(lan.suspicion_timeout(1_000)),
        secs(lan.suspicion_timeout(10_000)),
    );
}

fn loss_table(r: &mut String, outcomes: &[Outcome]) {
    let _ = writeln!(r, "## 2. False positives with {:.0}% loss on every datagram\n", LOSS * 100.0);
    let _ = writeln!(
        r,
        "| agents | simulated | datagrams | lost | suspicions of live agents | live agents declared down | \
         declarations (observer × victim) | rejoins | declared per member per hour | rejoins per member \
         per hour |"
    );
    let _ = writeln!(r, "|---|---|---|---|---|---|---|---|---|---|");
    for o in outcomes {
        let l = &o.loss;
        let member_hours = l.live as f64 * l.simulated.as_secs_f64() / 3600.0;
        let rate = l.fp.members_declared as f64 / member_hours;
        let rejoins = l.fp.rejoins as f64 / member_hours;
        let _ = writeln!(
            r,
            "| {} | {:.0} s | {} | {} | {} | {} | {} | {} | {rate:.1e} ({:.0} member-hours) | {rejoins:.1e} |",
            o.agents,
            l.simulated.as_secs_f64(),
            l.traffic.datagrams,
            l.traffic.lost,
            l.fp.suspicions,
            l.fp.members_declared,
            l.fp.declarations,
            l.fp.rejoins,
            member_hours
        );
    }
    let _ = writeln!(
        r,
        "\nA suspicion is a suspicion timer started against a live agent; a declaration is a \
         `MemberDown` about a live agent at some observer. A rejoin is a live agent that was told it \
         was down and came back as its next generation: foca 2.0 sends `TurnUndead` when a suspicion \
         timer expires while the member is still listed, even if it refuted the suspicion in time \
         (`notify_down_members` is on in `foca_config`), so a refuted suspicion still ends in a \
         rejoin: a generation bump that the others see as a rename of a live member (no failure \
         event), and a \"declared failed; rejoining\" log line on the suspect. memberlist \
         (perf-notes): no false suspicion in 22 runs under 1% UDP loss (up to 100 nodes).\n"
    );
}

fn join_table(r: &mut String, outcomes: &[Outcome]) {
    let _ = writeln!(r, "## 3. Join convergence (one new agent, push-pull with one member)\n");
    let _ = writeln!(
        r,
        "| agents | joiner lists every member | every member lists the joiner | joiner's bytes/s over its \
         first 10 s | its backlog at convergence | backlog drained after | bytes sent until then |"
    );
    let _ = writeln!(r, "|---|---|---|---|---|---|---|");
    for o in outcomes {
        let f = |d: Option<Duration>| d.map_or("not converged".to_owned(), secs);
        let (a, b) = o
            .join
            .as_ref()
            .map_or(("-".into(), "-".into()), |j| (f(j.joiner_knows_all), f(j.all_know_joiner)));
        let l = &o.joiner;
        let (drained, bytes) = l.drained.map_or(("not drained".to_owned(), "-".to_owned()), |(d, b)| {
            (secs(d), format!("{:.1} MB", b as f64 / 1e6))
        });
        let _ = writeln!(
            r,
            "| {} | {a} | {b} | {:.0} B/s | {} updates | {drained} | {bytes} |",
            o.agents, l.bytes_per_sec, l.backlog_at_join
        );
    }
    let _ = writeln!(
        r,
        "\nmemberlist (perf-notes) measured a different thing: N nodes started at once until all \
         see N: 0.20 s at 10, 0.94 s at 50, 1.95 s at 100. The joiner merges the whole state with \
         broadcast on, as the driver does, so it re-gossips every member it learned, each with the \
         retransmit limit of the one-member pool it was when it merged (4), in full packets, for \
         as long as the backlog column says (the loss run starts 10 s after the join; the backlog \
         is checked every simulated second). A steady agent sends about 510 B/s.\n"
    );
}

fn traffic_table(r: &mut String, outcomes: &[Outcome], lan: &Timing) {
    let (ping, ack) = coordinate_datagram_sizes();
    let coord = (ping + ack + 2 * FRAME_PLAIN) as f64 / lan.probe_interval.as_secs_f64();
    let _ = writeln!(r, "## 4. Steady-state traffic per agent (no loss, no membership change)\n");
    let _ = writeln!(
        r,
        "| agents | window | datagrams/s | mean datagram | foca bytes/s | on the wire, plaintext | encrypted | \
         push-pull TCP (≈) | + coordinate pings (not simulated) |"
    );
    let _ = writeln!(r, "|---|---|---|---|---|---|---|---|---|");
    for o in outcomes {
        let t = &o.steady;
        let per = o.steady_live as f64 * o.steady_window.as_secs_f64();
        let _ = writeln!(
            r,
            "| {} | {:.0} s | {:.2} | {:.0} B | {:.0} B/s | {:.0} B/s | {:.0} B/s | {:.0} B/s | {coord:.0} B/s |",
            o.agents,
            o.steady_window.as_secs_f64(),
            t.datagrams as f64 / per,
            t.bytes as f64 / t.datagrams.max(1) as f64,
            t.bytes as f64 / per,
            t.wire_bytes(false) as f64 / per,
            t.wire_bytes(true) as f64 / per,
            t.push_pull_bytes as f64 / per,
        );
    }
    let _ = writeln!(
        r,
        "\nFraming: +{FRAME_PLAIN} B per datagram plaintext, +{FRAME_ENCRYPTED} B encrypted. Push-pull is \
         counted as members × encoded member size per message, both directions. Coordinates: a {ping} B \
         ping and a {ack} B ack per probe interval (plaintext framing). memberlist (perf-notes): about \
         84 B/s of UDP per node plus ≈20 B/s of TCP state sync. Every foca packet carries the sender's \
         and the receiver's full identity (name, address and tags), hence the larger pings.\n"
    );
}

fn runs_table(r: &mut String, outcomes: &[Outcome]) {
    let _ = writeln!(r, "## Runs\n");
    let _ = writeln!(r, "| agents | crashes | simulated | events | bootstrap (wall) | total (wall) |");
    let _ = writeln!(r, "|---|---|---|---|---|---|");
    for o in outcomes {
        let _ = writeln!(
            r,
            "| {} | {} | {:.0} s | {} | {:.1?} | {:.1?} |",
            o.agents,
            o.detections.len(),
            o.simulated.as_secs_f64(),
            o.events,
            o.bootstrap_wall,
            o.wall
        );
    }
}
