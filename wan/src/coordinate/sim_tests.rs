//! Seeded simulations of whole clusters, after Serf's `performance_test.go`: nodes with known
//! pairwise RTTs probe random peers for many rounds, then every estimated distance is compared
//! with the truth. Each failure message carries the seed, so a run can be replayed.

use super::*;

/// Pairwise true RTTs; `truth[i][j] == truth[j][i]`, zero on the diagonal.
type Truth = Vec<Vec<Duration>>;

/// Seeds of the simulation runs; each run prints its seed when it fails.
const SEEDS: [u64; 3] = [1, 2, 3];

fn symmetric(nodes: usize, mut rtt: impl FnMut(usize, usize) -> Duration) -> Truth {
    let mut truth = vec![vec![Duration::ZERO; nodes]; nodes];
    for (i, j) in (0..nodes).flat_map(|i| (i + 1..nodes).map(move |j| (i, j))) {
        let d = rtt(i, j);
        truth[i][j] = d;
        truth[j][i] = d;
    }
    truth
}

/// Nodes on a line, `spacing` apart.
fn line(nodes: usize, spacing: Duration) -> Truth {
    symmetric(nodes, |i, j| spacing * (j - i) as u32)
}

/// Nodes on a square grid, `spacing` apart.
fn grid(nodes: usize, spacing: Duration) -> Truth {
    let n = (nodes as f64).sqrt() as usize;
    symmetric(nodes, |i, j| {
        let (dx, dy) = ((j % n) as f64 - (i % n) as f64, (j / n) as f64 - (i / n) as f64);
        spacing.mul_f64((dx * dx + dy * dy).sqrt())
    })
}

/// Two sites: `lan` apart within a site, `lan + wan` across.
fn split(nodes: usize, lan: Duration, wan: Duration) -> Truth {
    let half = nodes / 2;
    symmetric(nodes, |i, j| if (i <= half) == (j <= half) { lan } else { lan + wan })
}

/// Nodes 1.. on a circle of `radius`; node 0 is `2 * radius` from all of them, so it belongs
/// in the middle, lifted up by a large height.
fn circle(nodes: usize, radius: Duration) -> Truth {
    let point = |k: usize| {
        let t = 2.0 * std::f64::consts::PI * k as f64 / nodes as f64;
        (t.cos(), t.sin())
    };
    symmetric(nodes, |i, j| {
        if i == 0 {
            return radius * 2;
        }
        let ((x1, y1), (x2, y2)) = (point(i), point(j));
        radius.mul_f64(((x2 - x1).powi(2) + (y2 - y1).powi(2)).sqrt())
    })
}

/// Independent normally distributed RTTs (not embeddable in any space).
fn random(nodes: usize, mean: Duration, deviation: Duration, seed: u64) -> Truth {
    let mut rng = SplitMix64::new(seed);
    symmetric(nodes, |_, _| {
        Duration::from_secs_f64(mean.as_secs_f64() + normal(&mut rng) * deviation.as_secs_f64())
    })
}

/// Standard normal sample (Box–Muller).
fn normal(rng: &mut SplitMix64) -> f64 {
    let u1 = 1.0 - rng.next_f64(); // (0, 1], so the log is finite
    let u2 = rng.next_f64();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Fresh clients at the origin, each with its own generator derived from the run's seed.
fn clients(nodes: usize, config: &Config, seed: u64) -> Vec<Client> {
    (0..nodes).map(|i| Client::with_seed(config.clone(), seed * 1000 + i as u64).unwrap()).collect()
}

/// Each cycle, every node probes one random peer and feeds what `observe(i, j, rng)` returns.
fn simulate_with(
    clients: &mut [Client],
    cycles: usize,
    seed: u64,
    mut observe: impl FnMut(usize, usize, &mut SplitMix64) -> Duration,
) {
    let mut rng = SplitMix64::new(seed);
    let nodes = clients.len();
    for _ in 0..cycles {
        for i in 0..nodes {
            let j = (rng.next_u64() % nodes as u64) as usize;
            if j == i {
                continue;
            }
            let peer = clients[j].coordinate().clone();
            let rtt = observe(i, j, &mut rng);
            clients[i].update(&format!("node_{j}"), &peer, rtt).expect("simulated observations are valid");
        }
    }
}

/// Noise-free probes: every observation is the true RTT.
fn simulate(clients: &mut [Client], truth: &Truth, cycles: usize, seed: u64) {
    simulate_with(clients, cycles, seed, |i, j, _| truth[i][j]);
}

/// Relative error `|estimate − truth| / truth` over all pairs.
#[derive(Debug)]
struct Stats {
    avg: f64,
    max: f64,
}

fn evaluate(clients: &[Client], truth: &Truth) -> Stats {
    let mut stats = Stats { avg: 0.0, max: 0.0 };
    let mut pairs = 0;
    for i in 0..clients.len() {
        for j in i + 1..clients.len() {
            let estimate = clients[i].distance_to(clients[j].coordinate()).as_secs_f64();
            let actual = truth[i][j].as_secs_f64();
            let error = (estimate - actual).abs() / actual;
            stats.max = stats.max.max(error);
            stats.avg += error;
            pairs += 1;
        }
    }
    stats.avg /= f64::from(pairs);
    stats
}

fn assert_within(stats: &Stats, avg: f64, max: f64, seed: u64) {
    assert!(
        stats.avg <= avg && stats.max <= max,
        "seed {seed}: {stats:?} out of spec (avg <= {avg}, max <= {max})"
    );
}

/// Runs `scenario` once per seed and checks the error of each run. Serf's own test runs one
/// seed against tight bounds; here every bound holds for each of seeds 1 to 15 (measured when
/// these tests were written), and the tests run the first three.
fn check_seeds(truth: &Truth, config: &Config, cycles: usize, avg: f64, max: f64) -> Vec<Vec<Client>> {
    SEEDS
        .iter()
        .map(|&seed| {
            let mut cs = clients(truth.len(), config, seed);
            simulate(&mut cs, truth, cycles, seed);
            assert_within(&evaluate(&cs, truth), avg, max, seed);
            cs
        })
        .collect()
}

#[test]
fn nodes_on_a_line_converge_to_their_true_distances() {
    // Serf: avg 0.0018, max 0.0092.
    check_seeds(&line(10, Duration::from_millis(10)), &Config::default(), 1000, 0.004, 0.02);
}

#[test]
fn nodes_on_a_grid_converge_to_their_true_distances() {
    // Serf: avg 0.0015, max 0.022.
    check_seeds(&grid(25, Duration::from_millis(10)), &Config::default(), 1000, 0.003, 0.03);
}

#[test]
fn two_sites_are_told_apart() {
    // Serf: avg 0.00006, max 0.00048, which 9 of our 15 seeds meet; the others settle with
    // the 1 ms in-site distance carried by the adjustment terms, and stay within 0.3 % avg.
    check_seeds(
        &split(25, Duration::from_millis(1), Duration::from_millis(10)),
        &Config::default(),
        1000,
        0.003,
        0.02,
    );
}

#[test]
fn a_node_equidistant_from_a_ring_is_lifted_by_its_height() {
    // Serf: avg 0.0025, max 0.064, centre height >= 0.97 r, ring heights <= 0.03 r (ours reach
    // 0.042 r on some seeds).
    let radius = Duration::from_millis(100);
    let config = Config { dimensionality: 2, ..Config::default() };
    let runs = check_seeds(&circle(25, radius), &config, 1000, 0.006, 0.12);

    let r = radius.as_secs_f64();
    for (seed, cs) in SEEDS.iter().zip(runs) {
        let centre = cs[0].coordinate().height;
        assert!(centre >= 0.97 * r, "seed {seed}: centre height {centre} should be about {r}");
        for (i, c) in cs.iter().enumerate().skip(1) {
            let h = c.coordinate().height;
            assert!(h <= 0.05 * r, "seed {seed}: ring node {i} height {h} should be near zero");
        }
    }
}

#[test]
fn gravity_pulls_a_drifting_cluster_back_to_the_origin() {
    let dist = Duration::from_millis(500);
    let config = Config { dimensionality: 2, ..Config::default() };
    // A square up in the first quadrant; nodes 2 and 3 start on the same point:
    //   (1) — (2)
    //    |     |
    //   (0) — (3)
    let d = dist.as_secs_f64();
    let truth =
        symmetric(
            4,
            |i, j| if i % 2 == 0 && j % 2 == 0 { dist.mul_f64(std::f64::consts::SQRT_2) } else { dist },
        );
    let centre_offset = |cs: &[Client]| {
        let coords: Vec<&[f64]> = cs.iter().map(|c| c.coordinate().vec.as_slice()).collect();
        magnitude((0..2).map(|k| {
            let (lo, hi) =
                coords.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v[k]), hi.max(v[k])));
            lo + (hi - lo) / 2.0
        }))
    };

    for seed in SEEDS {
        let mut cs = clients(4, &config, seed);
        for (c, vec) in cs.iter_mut().zip([[0.0, 0.0], [0.0, d], [d, d], [d, d]]) {
            c.coord.vec = vec.to_vec();
        }
        simulate(&mut cs, &truth, 1000, seed);
        let baseline = centre_offset(&cs);
        simulate(&mut cs, &truth, 10_000, seed + 100);
        let after = centre_offset(&cs);
        assert!(after <= 0.8 * baseline, "seed {seed}: centre drifted {baseline} -> {after}");
    }
}

#[test]
fn random_rtts_are_approximated() {
    // Serf: avg 0.075, max 0.33 (these RTTs fit no space; only a rough fit is possible).
    let truth = random(25, Duration::from_millis(100), Duration::from_millis(10), 1);
    check_seeds(&truth, &Config::default(), 1000, 0.075, 0.5);
}

/// Nodes scattered on a 100 ms square, each behind an access link of 0.5–2.5 ms (a height).
fn plane_with_access_links(nodes: usize, seed: u64) -> Truth {
    let mut rng = SplitMix64::new(seed);
    let points: Vec<(f64, f64, f64)> = (0..nodes)
        .map(|_| (rng.next_f64() * 0.1, rng.next_f64() * 0.1, 0.0005 + rng.next_f64() * 0.002))
        .collect();
    symmetric(nodes, |i, j| {
        let ((x1, y1, h1), (x2, y2, h2)) = (points[i], points[j]);
        Duration::from_secs_f64(((x2 - x1).powi(2) + (y2 - y1).powi(2)).sqrt() + h1 + h2)
    })
}

/// Probes of a noisy network: ±10 % jitter, and one probe in 50 delayed 2–5 times.
fn noisy(truth: &Truth) -> impl FnMut(usize, usize, &mut SplitMix64) -> Duration + '_ {
    |i, j, rng| {
        let jitter = 0.9 + 0.2 * rng.next_f64();
        let spike = if rng.next_u64() % 50 == 0 { 2.0 + 3.0 * rng.next_f64() } else { 1.0 };
        truth[i][j].mul_f64(jitter * spike)
    }
}

/// Relative errors of all pairs, sorted ascending.
fn sorted_errors(clients: &[Client], truth: &Truth) -> Vec<f64> {
    let mut errors = Vec::new();
    for i in 0..clients.len() {
        for j in i + 1..clients.len() {
            let estimate = clients[i].distance_to(clients[j].coordinate()).as_secs_f64();
            let actual = truth[i][j].as_secs_f64();
            errors.push((estimate - actual).abs() / actual);
        }
    }
    errors.sort_by(f64::total_cmp);
    errors
}

fn run_noisy(filter: usize, seed: u64) -> (Stats, f64, Vec<Client>) {
    let truth = plane_with_access_links(20, seed);
    let mut cs = clients(20, &Config { latency_filter_size: filter, ..Config::default() }, seed);
    simulate_with(&mut cs, 2000, seed, noisy(&truth));
    let errors = sorted_errors(&cs, &truth);
    let p90 = errors[errors.len() * 9 / 10];
    (evaluate(&cs, &truth), p90, cs)
}

#[test]
fn a_noisy_network_with_spikes_is_still_estimated_closely() {
    for seed in SEEDS {
        let (stats, p90, cs) = run_noisy(3, seed);
        // Relative error on the shortest links (~2 ms) is the largest; bound the bulk of pairs.
        assert!(
            stats.avg <= 0.06 && p90 <= 0.15,
            "seed {seed}: {stats:?}, p90 {p90} out of spec (avg <= 0.06, p90 <= 0.15)"
        );
        assert!(cs.iter().all(|c| c.stats().resets == 0), "seed {seed}: no resets expected");
    }
}

#[test]
fn the_latency_filter_keeps_spikes_out_of_the_estimate() {
    for seed in SEEDS {
        let (filtered, _, _) = run_noisy(3, seed);
        let (unfiltered, _, _) = run_noisy(1, seed);
        assert!(
            filtered.avg < 0.5 * unfiltered.avg,
            "seed {seed}: median of 3 {filtered:?} should clearly beat no filter {unfiltered:?}"
        );
    }
}
