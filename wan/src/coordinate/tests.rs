//! Unit tests of the coordinate arithmetic, the client's guards and the JSON shape. The
//! reference numbers come from Serf's own `coordinate_test.go` and `client_test.go`.

use super::*;

fn assert_close(got: f64, want: f64) {
    assert!((got - want).abs() <= 1.0e-6, "got {got}, want {want}");
}

fn config3() -> Config {
    Config { dimensionality: 3, ..Config::default() }
}

fn at(config: &Config, vec: &[f64]) -> Coordinate {
    Coordinate { vec: vec.to_vec(), ..Coordinate::new(config) }
}

#[test]
fn defaults_are_serfs() {
    let c = Config::default();
    assert_eq!(c.dimensionality, 8);
    assert_eq!(c.vivaldi_error_max, 1.5);
    assert_eq!((c.vivaldi_ce, c.vivaldi_cc), (0.25, 0.25));
    assert_eq!(c.adjustment_window_size, 20);
    assert_eq!(c.height_min, 10.0e-6);
    assert_eq!(c.latency_filter_size, 3);
    assert_eq!(c.gravity_rho, 150.0);
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn a_new_client_sits_at_the_origin_with_the_largest_error() {
    let client = Client::new(Config::default()).unwrap();
    let c = client.coordinate();
    assert_eq!(c.vec, vec![0.0; 8]);
    assert_eq!(c.error, 1.5);
    assert_eq!(c.adjustment, 0.0);
    assert_eq!(c.height, 10.0e-6);
    assert_eq!(client.stats().resets, 0);
}

#[test]
fn bad_configs_are_refused_naming_the_field() {
    let cases: [(Config, &str); 6] = [
        (Config { dimensionality: 0, ..Config::default() }, "dimensionality"),
        (Config { latency_filter_size: 0, ..Config::default() }, "latency_filter_size"),
        (Config { gravity_rho: 0.0, ..Config::default() }, "gravity_rho"),
        (Config { vivaldi_ce: f64::NAN, ..Config::default() }, "vivaldi_ce"),
        (Config { vivaldi_cc: 2.0, ..Config::default() }, "vivaldi_cc"),
        (Config { height_min: -1.0, ..Config::default() }, "height_min"),
    ];
    for (config, field) in cases {
        let err = Client::new(config).unwrap_err();
        assert!(matches!(err, CoordinateError::InvalidConfig { key, .. } if key == field), "{err}");
        assert!(err.to_string().contains(field), "{err}");
    }
    let no_window = Config { adjustment_window_size: 0, ..Config::default() };
    assert!(Client::new(no_window).is_ok(), "a zero adjustment window disables the feature");
}

#[test]
fn is_valid_rejects_nan_and_infinity_in_every_field() {
    let config = config3();
    let fields = 3 + 3; // vec[0..3], error, adjustment, height
    for field in 0..fields {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut c = Coordinate::new(&config);
            assert!(c.is_valid());
            match field {
                0..=2 => c.vec[field] = bad,
                3 => c.error = bad,
                4 => c.adjustment = bad,
                _ => c.height = bad,
            }
            assert!(!c.is_valid(), "field {field} = {bad} should be invalid");
        }
    }
}

#[test]
fn compatibility_is_about_dimensions() {
    let a = Coordinate::new(&config3());
    let b = Coordinate::new(&config3());
    let alien = Coordinate::new(&Config { dimensionality: 2, ..Config::default() });
    assert!(a.is_compatible_with(&b) && b.is_compatible_with(&a));
    assert!(!a.is_compatible_with(&alien) && !alien.is_compatible_with(&a));
}

#[test]
fn distance_is_euclidean_plus_heights_plus_positive_adjustments() {
    let config = Config { height_min: 0.0, ..config3() };
    let mut c1 = at(&config, &[-0.5, 1.3, 2.4]);
    let mut c2 = at(&config, &[1.2, -2.3, 3.4]);
    const EUCLID: f64 = 4.104875150354758;

    assert_close(c1.distance_to(&c1).as_secs_f64(), 0.0);
    assert_close(c1.distance_to(&c2).as_secs_f64(), EUCLID);
    assert_eq!(c1.distance_to(&c2), c2.distance_to(&c1));

    c1.adjustment = -1.0e6;
    assert_close(c1.distance_to(&c2).as_secs_f64(), EUCLID); // would go negative: ignored

    c1.adjustment = 0.1;
    c2.adjustment = 0.2;
    assert_close(c1.distance_to(&c2).as_secs_f64(), EUCLID + 0.3);

    c1.height = 0.7;
    c2.height = 0.1;
    assert_close(c1.distance_to(&c2).as_secs_f64(), EUCLID + 0.3 + 0.8);
}

#[test]
fn distance_truncates_to_nanoseconds_like_serf() {
    let config = Config { height_min: 0.0, ..config3() };
    let client = Client::new(config.clone()).unwrap();
    let other = at(&config, &[0.0, 0.0, 12.345]);
    assert_eq!(client.distance_to(&other), Duration::from_nanos(12_345_000_000));
}

#[test]
fn distance_to_an_incompatible_or_invalid_coordinate_is_unknown() {
    let config = config3();
    let origin = Coordinate::new(&config);
    let alien = Coordinate::new(&Config { dimensionality: 4, ..Config::default() });
    assert_eq!(origin.checked_distance_to(&alien), None);
    assert_eq!(origin.distance_to(&alien), Duration::MAX);

    let nan = at(&config, &[f64::NAN, 0.0, 0.0]);
    assert_eq!(origin.checked_distance_to(&nan), None);
    let huge = at(&config, &[f64::MAX, f64::MAX, 0.0]);
    assert_eq!(origin.checked_distance_to(&huge), None, "overflow to infinity is not a distance");
}

#[test]
fn apply_force_moves_along_the_line_between_the_points() {
    let config = Config { height_min: 0.0, ..config3() };
    let mut rng = SplitMix64::new(1);
    let origin = Coordinate::new(&config);
    let above = at(&config, &[0.0, 0.0, 2.9]);

    let c = origin.apply_force(0.0, 5.3, &above, &mut rng);
    assert_eq!(c.vec, vec![0.0, 0.0, -5.3]);

    let right = at(&config, &[3.4, 0.0, -5.3]);
    let c = c.apply_force(0.0, 2.0, &right, &mut rng);
    assert_eq!(c.vec, vec![-2.0, 0.0, -5.3]);

    // On top of each other: a random direction, one unit away.
    let c = origin.apply_force(0.0, 1.0, &origin, &mut rng);
    assert_close(origin.distance_to(&c).as_secs_f64(), 1.0);
}

#[test]
fn apply_force_scales_the_height_and_keeps_its_floor() {
    let config = config3();
    let min = config.height_min;
    let mut rng = SplitMix64::new(1);
    let origin = Coordinate::new(&config);
    let above = at(&config, &[0.0, 0.0, 2.9]);

    let pushed = origin.apply_force(min, 5.3, &above, &mut rng);
    assert_close(pushed.height, min + 5.3 * (2.0 * min) / 2.9);

    let pulled = origin.apply_force(min, -5.3, &above, &mut rng);
    assert_eq!(pulled.vec, vec![0.0, 0.0, 5.3]);
    assert_eq!(pulled.height, min);
}

#[test]
fn an_rtt_longer_than_expected_pushes_the_client_away() {
    let config = config3();
    let mut client = Client::new(config.clone()).unwrap();
    let other = at(&config, &[0.0, 0.0, 0.001]);
    let c = client.update("node", &other, Duration::from_millis(2)).unwrap();
    assert!(c.vec[2] < 0.0, "client should scoot down, away from the node above: {c:?}");
    assert_eq!(&c, client.coordinate(), "update returns the new coordinate");

    let mut placed = c.clone();
    placed.vec[2] = 99.0;
    client.set_coordinate(placed).unwrap();
    assert_eq!(client.coordinate().vec[2], 99.0);
}

#[test]
fn rtts_above_ten_seconds_are_refused_and_change_nothing() {
    let config = config3();
    let mut client = Client::new(config.clone()).unwrap();
    let other = at(&config, &[0.0, 0.0, 0.001]);
    let before = client.clone();

    for rtt in [MAX_RTT + Duration::from_nanos(1), Duration::from_secs(11), Duration::MAX] {
        let err = client.update("node", &other, rtt).unwrap_err();
        assert_eq!(err, CoordinateError::RttOutOfRange { rtt });
        assert!(err.to_string().starts_with("round trip time not in valid range"), "{err}");
        assert_eq!(client.coordinate(), before.coordinate());
        assert_eq!(client.distance_to(&other), before.distance_to(&other));
    }
    assert!(client.latency_samples.is_empty(), "refused rtts never reach the latency filter");

    client.update("node", &other, MAX_RTT).expect("exactly 10s is allowed");
}

#[test]
fn a_zero_rtt_is_accepted_and_keeps_the_coordinate_valid() {
    // Serf accepts zero (coarse clocks produce it) and treats it as 1 µs.
    let config = config3();
    let mut client = Client::new(config.clone()).unwrap();
    let other = at(&config, &[0.0, 0.0, 0.001]);
    for _ in 0..10 {
        let c = client.update("node", &other, Duration::ZERO).unwrap();
        assert!(c.is_valid(), "{c:?}");
    }
    assert_eq!(client.stats().resets, 0);
}

#[test]
fn invalid_or_incompatible_peer_coordinates_are_refused() {
    let config = config3();
    let mut client = Client::new(config.clone()).unwrap();
    let rtt = Duration::from_millis(250);
    let before = client.coordinate().clone();

    for bad in [f64::NAN, f64::INFINITY] {
        let mut other = Coordinate::new(&config);
        other.vec[0] = bad;
        assert_eq!(client.update("node", &other, rtt), Err(CoordinateError::Invalid));
        let mut other = Coordinate::new(&config);
        other.error = bad;
        assert_eq!(client.update("node", &other, rtt), Err(CoordinateError::Invalid));
        assert_eq!(client.set_coordinate(other), Err(CoordinateError::Invalid));
    }

    let alien = Coordinate::new(&Config { dimensionality: 6, ..Config::default() });
    let err = client.update("node", &alien, rtt).unwrap_err();
    assert_eq!(err, CoordinateError::Incompatible { expected: 3, got: 6 });
    assert!(err.to_string().contains("dimensions aren't compatible"), "{err}");
    assert_eq!(client.set_coordinate(alien), Err(CoordinateError::Incompatible { expected: 3, got: 6 }));

    assert_eq!(client.coordinate(), &before);
    assert!(client.latency_samples.is_empty());
}

#[test]
fn a_poisoned_coordinate_is_reset_on_the_next_update() {
    let config = config3();
    let mut client = Client::new(config.clone()).unwrap();
    client.coord.vec[0] = f64::NAN;

    let c = client.update("node", &Coordinate::new(&config), Duration::from_millis(250)).unwrap();
    assert!(c.is_valid(), "{c:?}");
    assert_eq!(c, Coordinate::new(&config), "reset puts the client back at the origin");
    assert_eq!(client.stats().resets, 1);
}

#[test]
fn a_peer_far_enough_to_overflow_the_arithmetic_causes_a_reset_not_a_nan() {
    // Finite, so it passes the validity check, but the distance overflows to infinity.
    let config = config3();
    let mut client = Client::new(config.clone()).unwrap();
    let far = Coordinate { height: f64::MAX, ..at(&config, &[f64::MAX, f64::MAX, 0.0]) };
    assert!(far.is_valid());

    let c = client.update("far", &far, Duration::from_millis(5)).unwrap();
    assert!(c.is_valid(), "{c:?}");
    assert_eq!(client.stats().resets, 1);

    // The client keeps working afterwards.
    let near = at(&config, &[0.001, 0.0, 0.0]);
    for _ in 0..5 {
        assert!(client.update("near", &near, Duration::from_millis(1)).unwrap().is_valid());
    }
    assert_eq!(client.stats().resets, 1);
}

#[test]
fn the_latency_filter_takes_the_median_of_the_last_three_per_node() {
    let mut client = Client::new(Config::default()).unwrap();
    let mut feed = |node: &str, rtt: f64, want: f64| assert_close(client.latency_filter(node, rtt), want);
    feed("alice", 0.201, 0.201);
    feed("alice", 0.200, 0.201);
    feed("alice", 0.207, 0.201);
    // The glitch is filtered out and never seen by the Vivaldi step.
    feed("alice", 1.9, 0.207);
    feed("alice", 0.203, 0.207);
    feed("alice", 0.199, 0.203);
    feed("alice", 0.211, 0.203);
    // Nodes don't share samples.
    feed("bob", 0.310, 0.310);

    client.forget_node("alice");
    assert!(!client.latency_samples.contains_key("alice"));
    assert_close(client.latency_filter("alice", 0.888), 0.888);
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = |seed| {
        let config = config3();
        let mut client = Client::with_seed(config.clone(), seed).unwrap();
        let origin = Coordinate::new(&config);
        client.update("twin", &origin, Duration::from_millis(10)).unwrap()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7).vec, run(8).vec, "coincident nodes are pushed in a seed-dependent direction");
}

#[test]
fn json_uses_consuls_field_names() {
    let config = Config::default();
    let c = Coordinate { adjustment: 0.25, ..at(&config, &[0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.5]) };
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "Vec": [0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.5],
            "Error": 1.5,
            "Adjustment": 0.25,
            "Height": 10.0e-6,
        })
    );
    let back: Coordinate = serde_json::from_value(json).unwrap();
    assert_eq!(back, c);
}

#[test]
fn json_decodes_consuls_sample_and_tolerates_missing_fields() {
    // The sample response of GET /v1/coordinate/datacenters in Consul's API docs.
    let sample = r#"{"Adjustment":0,"Error":1.5,"Height":0,"Vec":[0,0,0,0,0,0,0,0]}"#;
    let c: Coordinate = serde_json::from_str(sample).unwrap();
    assert_eq!(c.vec, vec![0.0; 8]);
    assert_eq!((c.error, c.adjustment, c.height), (1.5, 0.0, 0.0));
    assert!(c.is_valid() && c.is_compatible_with(&Coordinate::new(&Config::default())));

    let sparse: Coordinate = serde_json::from_str(r#"{"Vec":[1,2,3,4,5,6,7,8]}"#).unwrap();
    assert_eq!((sparse.error, sparse.adjustment, sparse.height), (0.0, 0.0, 0.0));

    for empty in [r#"{"Vec":null}"#, "{}"] {
        let c: Coordinate = serde_json::from_str(empty).unwrap();
        assert!(c.vec.is_empty());
        assert!(!c.is_compatible_with(&Coordinate::new(&Config::default())), "{empty}");
    }

    assert!(serde_json::from_str::<Coordinate>(r#"{"Vec":"x"}"#).is_err());
}

#[test]
fn sort_by_distance_puts_the_nearest_first_and_the_unknown_last() {
    let config = Config { height_min: 0.0, ..Config::default() };
    let ms = |x: f64| {
        let mut v = vec![0.0; 8];
        v[0] = x / 1000.0;
        Some(at(&config, &v))
    };
    let alien = Some(Coordinate::new(&config3()));
    let broken = Some(Coordinate { error: f64::NAN, ..at(&config, &[0.0; 8]) });
    let mut items: Vec<(&str, Option<Coordinate>)> = vec![
        ("five", ms(5.0)),
        ("none-a", None),
        ("one-a", ms(1.0)),
        ("alien", alien),
        ("three", ms(-3.0)),
        ("one-b", ms(1.0)),
        ("broken", broken),
        ("none-b", None),
        ("zero", ms(0.0)),
    ];
    let origin = at(&config, &[0.0; 8]);
    sort_by_distance(&origin, &mut items, |(_, c)| c.as_ref());
    let names: Vec<&str> = items.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["zero", "one-a", "one-b", "three", "five", "none-a", "alien", "broken", "none-b"]);
}

#[test]
fn sort_by_distance_from_an_unusable_origin_keeps_the_order() {
    let config = Config::default();
    let mut items = vec![at(&config, &[0.3; 8]), at(&config, &[0.1; 8]), at(&config, &[0.2; 8])];
    let before = items.clone();
    let origin = Coordinate::new(&config3());
    sort_by_distance(&origin, &mut items, |c| Some(c));
    assert_eq!(items, before);
}
