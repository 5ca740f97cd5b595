//! Network coordinates (Consul's `coordinates` table): one Vivaldi coordinate per catalog
//! node, written in batches by agents (`PUT /v1/coordinate/update`, the agents' periodic
//! sync) and read by `/v1/coordinate/*`, `?near=` sorting and `sekisho rtt`.
//!
//! As in Consul, an update for a node the catalog does not know is dropped (coordinates are
//! cleaned up with their node, so one stored for an unknown node would never go away), and
//! an invalid coordinate (NaN or infinite components) is refused before it reaches Raft.

use serde::{Deserialize, Serialize};

pub use sekisho_wan::coordinate::Coordinate;

use super::{Store, Table};

/// One node's coordinate, in Consul's JSON shape (`{"Node","Segment","Coord"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CoordinateEntry {
    /// The node name.
    pub node: String,
    /// The network segment (always the default, `""`, in Sekisho).
    #[serde(default)]
    pub segment: String,
    /// The coordinate.
    pub coord: Coordinate,
}

/// Stores each update whose node exists. Returns how many were stored.
pub fn coordinate_batch_update(st: &mut Store, idx: u64, updates: &[CoordinateEntry]) -> usize {
    let mut stored = 0;
    for u in updates {
        if st.nodes.contains_key(&u.node) && u.coord.is_valid() {
            st.set_coordinate(idx, &u.node, u.coord.clone());
            stored += 1;
        }
    }
    stored
}

/// Every stored coordinate, sorted by node name.
pub fn coordinate_list(st: &Store) -> Vec<CoordinateEntry> {
    st.coordinates.iter().map(|(n, c)| entry(n, c)).collect()
}

/// The coordinate of `node`, if one is stored.
pub fn coordinate_get(st: &Store, node: &str) -> Option<CoordinateEntry> {
    st.coordinates.get(node).map(|c| entry(node, c))
}

/// The index blocking coordinate reads report.
pub fn coordinate_index(st: &Store) -> u64 {
    st.index(Table::Coordinates)
}

fn entry(node: &str, c: &Coordinate) -> CoordinateEntry {
    CoordinateEntry { node: node.to_owned(), segment: String::new(), coord: c.clone() }
}

/// Sorts list items (API JSON values, prepared-query results) by estimated RTT from
/// `near`'s coordinate, nearest first (Consul's `?near=`). `node_of` names each item's node.
/// Items whose node has no coordinate keep their order at the end; when `near` itself has
/// no coordinate the list is left as it is.
pub fn sort_near<T>(st: &Store, near: &str, items: &mut [T], node_of: impl Fn(&T) -> Option<&str>) {
    let Some(origin) = st.coordinates.get(near) else { return };
    // Stable; `None` (no coordinate, or an unusable one) sorts after every distance.
    items.sort_by_cached_key(|v| {
        let d = node_of(v).and_then(|n| st.coordinates.get(n)).and_then(|c| origin.checked_distance_to(c));
        (d.is_none(), d)
    });
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::state::types::Node;

    fn coord(x: f64) -> Coordinate {
        let mut c = Coordinate::new(&sekisho_wan::coordinate::Config::default());
        c.vec[0] = x;
        c
    }

    fn store_with(nodes: &[&str]) -> Store {
        let mut st = Store::default();
        for n in nodes {
            st.set_node(1, Node { node: (*n).into(), address: "10.0.0.1".into(), ..Default::default() });
        }
        st
    }

    fn update(node: &str, c: Coordinate) -> CoordinateEntry {
        CoordinateEntry { node: node.into(), segment: String::new(), coord: c }
    }

    #[test]
    fn updates_for_unknown_nodes_or_invalid_coordinates_are_dropped() {
        let mut st = store_with(&["a", "b"]);
        let mut bad = coord(0.0);
        bad.vec[1] = f64::NAN;
        let n = coordinate_batch_update(
            &mut st,
            5,
            &[update("a", coord(1.0)), update("ghost", coord(2.0)), update("b", bad)],
        );
        assert_eq!(n, 1);
        assert_eq!(coordinate_list(&st).iter().map(|e| e.node.as_str()).collect::<Vec<_>>(), ["a"]);
        assert_eq!(coordinate_index(&st), 5);
        assert!(coordinate_get(&st, "ghost").is_none());
    }

    #[test]
    fn deregistering_a_node_removes_its_coordinate() {
        let mut st = store_with(&["a"]);
        coordinate_batch_update(&mut st, 2, &[update("a", coord(1.0))]);
        let req =
            crate::state::catalog::DeregisterRequest { node: "a".into(), service_id: None, check_id: None };
        crate::state::catalog::deregister(&mut st, 3, &req, std::time::Instant::now()).expect("deregister");
        assert!(coordinate_get(&st, "a").is_none());
        assert_eq!(coordinate_index(&st), 3, "the removal moves the table index");
    }

    #[test]
    fn a_rolled_back_transaction_restores_the_coordinate() {
        let mut st = store_with(&["a"]);
        coordinate_batch_update(&mut st, 2, &[update("a", coord(1.0))]);
        st.begin();
        st.remove_coordinate(3, "a");
        st.rollback();
        assert_eq!(coordinate_get(&st, "a").map(|e| e.coord.vec[0]), Some(1.0));
    }

    #[test]
    fn near_sorts_by_distance_and_leaves_unknown_nodes_last() {
        let mut st = store_with(&["me", "far", "near", "none"]);
        let ups = [update("me", coord(0.0)), update("far", coord(0.5)), update("near", coord(0.01))];
        coordinate_batch_update(&mut st, 2, &ups);
        let mut items: Vec<Value> =
            ["none", "far", "near", "me"].iter().map(|n| serde_json::json!({ "Node": n })).collect();
        sort_near(&st, "me", &mut items, |v| v["Node"].as_str());
        let order: Vec<&str> = items.iter().filter_map(|v| v["Node"].as_str()).collect();
        assert_eq!(order, ["me", "near", "far", "none"]);

        let before = items.clone();
        sort_near(&st, "none", &mut items, |v| v["Node"].as_str());
        assert_eq!(items, before, "no origin coordinate: order unchanged");
    }
}
