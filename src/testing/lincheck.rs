//! A linearizability checker for KV histories (Wing & Gong's search with Lowe's memoisation,
//! as in porcupine and Knossos), over a per-key register model with CAS and session locks.
//!
//! Every operation is recorded with its invocation time, its completion time and what it
//! returned. An operation whose outcome is unknown (a timeout, a connection reset, a 5xx on a
//! write) may or may not have taken effect: it gets no completion time, so the search may
//! place it anywhere after its invocation, including after everything else (not applied).
//! Keys are independent registers, so each key's history is checked on its own
//! (linearizability is compositional).
//!
//! The model follows Sekisho's KV semantics (`state::kv`): a plain PUT keeps the lock holder,
//! `?cas=` succeeds when the key's ModifyIndex matches (0: the key must not exist),
//! `?acquire=` succeeds when the key is free or held by the same session, `?release=` when
//! it is held by that session; both also write the value. A workload that writes a unique
//! value per operation can express a CAS on an index as a CAS on the value read with it.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

/// A value (unique per write in the workload).
pub type ValueId = u32;
/// A session (lock holder).
pub type SessionId = u32;

/// An operation on one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// A read (default or `consistent`).
    Read,
    /// A plain PUT.
    Put(ValueId),
    /// A PUT with `?cas=`, as the value that index was read with (`None`: `cas=0`).
    Cas {
        /// The value the key must still hold.
        expect: Option<ValueId>,
        /// The value written on success.
        value: ValueId,
    },
    /// A DELETE.
    Delete,
    /// A PUT with `?acquire=`.
    Lock {
        /// The session acquiring.
        session: SessionId,
        /// The value written on success.
        value: ValueId,
    },
    /// A PUT with `?release=`.
    Unlock {
        /// The session releasing.
        session: SessionId,
        /// The value written on success.
        value: ValueId,
    },
}

/// What an operation returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A read's answer: the value (`None`: 404) and the lock holder.
    Value {
        /// The value read.
        value: Option<ValueId>,
        /// The session holding the key.
        holder: Option<SessionId>,
    },
    /// A write's `true` / `false`.
    Done(bool),
    /// No answer, or one that does not tell whether the write applied.
    Unknown,
}

/// One recorded operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// Which client ran it (for reports).
    pub client: usize,
    /// What the client sent, e.g. `read-consistent` (for reports).
    pub kind: &'static str,
    /// The operation.
    pub op: Op,
    /// Its result.
    pub outcome: Outcome,
    /// When the client sent it (since the start of the run).
    pub invoke: Duration,
    /// When the answer arrived; `None` when the outcome is unknown.
    pub complete: Option<Duration>,
}

/// A register's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Register {
    /// The current value (`None`: the key does not exist).
    pub value: Option<ValueId>,
    /// The session holding the key.
    pub holder: Option<SessionId>,
}

impl Register {
    /// Applies `op` and checks `outcome` against the model: the state after it, or `None`
    /// when the model could not have answered `outcome` from this state.
    pub fn step(self, op: Op, outcome: Outcome) -> Option<Register> {
        let done = |ok: bool| match outcome {
            Outcome::Done(b) => b == ok,
            Outcome::Unknown => true,
            Outcome::Value { .. } => false,
        };
        let (ok, next) = match op {
            Op::Read => {
                return match outcome {
                    Outcome::Value { value, holder } => {
                        (value == self.value && holder == self.holder).then_some(self)
                    }
                    // An unanswered read has no effect.
                    Outcome::Unknown => Some(self),
                    Outcome::Done(_) => None,
                };
            }
            Op::Put(v) => (true, Register { value: Some(v), holder: self.holder }),
            Op::Cas { expect, value } => {
                let ok = self.value == expect;
                (ok, Register { value: Some(value), holder: self.holder })
            }
            Op::Delete => (true, Register::default()),
            Op::Lock { session, value } => {
                let ok = self.holder.is_none_or(|h| h == session);
                (ok, Register { value: Some(value), holder: Some(session) })
            }
            Op::Unlock { session, value } => {
                let ok = self.holder == Some(session);
                (ok, Register { value: Some(value), holder: None })
            }
        };
        if !done(ok) {
            return None;
        }
        Some(if ok { next } else { self })
    }
}

/// The verdict for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A linearization exists.
    Linearizable,
    /// None exists; the text shows where the search got stuck.
    Violation(String),
    /// The search gave up after its step budget.
    Undecided,
}

/// The checker's result over a whole history.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Operations checked (reads with an unknown outcome are dropped first).
    pub ops: usize,
    /// Keys checked.
    pub keys: usize,
    /// Search steps taken.
    pub steps: u64,
    /// Keys with no linearization, with the checker's explanation.
    pub violations: Vec<(String, String)>,
    /// Keys the search gave up on.
    pub undecided: Vec<String>,
}

impl Report {
    /// Whether every key was shown linearizable.
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && self.undecided.is_empty()
    }
}

/// Checks every key of `history`, giving each key's search at most `budget` steps.
pub fn check(history: &[Entry], budget: u64) -> Report {
    let mut by_key: HashMap<&str, Vec<&Entry>> = HashMap::new();
    for e in history {
        if e.op == Op::Read && e.outcome == Outcome::Unknown {
            continue;
        }
        by_key.entry(&e.key).or_default().push(e);
    }
    let mut report = Report { keys: by_key.len(), ..Report::default() };
    let mut keys: Vec<&str> = by_key.keys().copied().collect();
    keys.sort_unstable();
    for key in keys {
        let ops = &by_key[key];
        report.ops += ops.len();
        let (verdict, steps) = check_key(ops, budget);
        report.steps += steps;
        match verdict {
            Verdict::Linearizable => {}
            Verdict::Violation(why) => report.violations.push((key.to_owned(), why)),
            Verdict::Undecided => report.undecided.push(key.to_owned()),
        }
    }
    report
}

/// One call or return event in the search's doubly linked list.
#[derive(Debug, Clone, Copy)]
struct Event {
    op: usize,
    is_call: bool,
    prev: usize,
    next: usize,
}

const NIL: usize = usize::MAX;

/// The search over one key's operations; returns the verdict and the steps taken.
fn check_key(ops: &[&Entry], budget: u64) -> (Verdict, u64) {
    let n = ops.len();
    // Events sorted by time; a call sorts before a return at the same instant (the two
    // operations then count as concurrent, the permissive choice). Unknown outcomes never
    // return: their return events go last.
    let mut order: Vec<(Duration, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, e) in ops.iter().enumerate() {
        order.push((e.invoke, false, i));
        order.push((e.complete.unwrap_or(Duration::MAX), true, i));
    }
    order.sort_by_key(|&(t, is_return, i)| (t, is_return, i));
    // Node 0 is a sentinel head.
    let mut ev = vec![Event { op: NIL, is_call: false, prev: NIL, next: NIL }];
    let mut call_of = vec![0usize; n];
    let mut ret_of = vec![0usize; n];
    for &(_, is_return, i) in &order {
        let id = ev.len();
        let prev = id - 1;
        ev[prev].next = id;
        ev.push(Event { op: i, is_call: !is_return, prev, next: NIL });
        if is_return { ret_of[i] = id } else { call_of[i] = id }
    }
    let words = n.div_ceil(64).max(1);
    let mut linearized = vec![0u64; words];
    let mut seen: HashSet<(Vec<u64>, Register)> = HashSet::new();
    let mut stack: Vec<(usize, Register)> = Vec::new();
    let mut state = Register::default();
    let mut best: Vec<usize> = Vec::new();
    let mut steps = 0u64;
    let mut cur = ev[0].next;
    let unlink = |ev: &mut Vec<Event>, id: usize| {
        let Event { prev, next, .. } = ev[id];
        ev[prev].next = next;
        if next != NIL {
            ev[next].prev = prev;
        }
    };
    let relink = |ev: &mut Vec<Event>, id: usize| {
        let Event { prev, next, .. } = ev[id];
        ev[prev].next = id;
        if next != NIL {
            ev[next].prev = id;
        }
    };
    while ev[0].next != NIL {
        steps += 1;
        if steps > budget {
            return (Verdict::Undecided, steps);
        }
        if cur == NIL {
            // Cannot happen: the list always ends with a return event.
            return (Verdict::Undecided, steps);
        }
        let e = ev[cur];
        if e.is_call {
            let entry = ops[e.op];
            if let Some(next_state) = state.step(entry.op, entry.outcome) {
                linearized[e.op / 64] |= 1 << (e.op % 64);
                if seen.insert((linearized.clone(), next_state)) {
                    stack.push((e.op, state));
                    state = next_state;
                    unlink(&mut ev, call_of[e.op]);
                    unlink(&mut ev, ret_of[e.op]);
                    if stack.len() > best.len() {
                        best = stack.iter().map(|&(op, _)| op).collect();
                    }
                    cur = ev[0].next;
                    continue;
                }
                linearized[e.op / 64] &= !(1 << (e.op % 64));
            }
            cur = e.next;
        } else {
            // A return whose call has not been linearized: backtrack.
            let Some((op, prev_state)) = stack.pop() else {
                return (Verdict::Violation(explain(ops, &best)), steps);
            };
            state = prev_state;
            linearized[op / 64] &= !(1 << (op % 64));
            relink(&mut ev, ret_of[op]);
            relink(&mut ev, call_of[op]);
            cur = ev[call_of[op]].next;
        }
    }
    (Verdict::Linearizable, steps)
}

/// The longest linearizable prefix the search found, its last steps, and the operations
/// none of which could come next.
fn explain(ops: &[&Entry], best: &[usize]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} operations; the longest linearizable prefix has {}", ops.len(), best.len());
    let mut state = Register::default();
    for &i in best {
        state = state.step(ops[i].op, ops[i].outcome).unwrap_or(state);
    }
    let _ = writeln!(s, "  last steps of that prefix:");
    for &i in best.iter().rev().take(8).collect::<Vec<_>>().iter().rev() {
        let _ = writeln!(s, "    {}", describe(ops[*i]));
    }
    let _ = writeln!(s, "  state after it: {state:?}; none of these fits next:");
    let done: HashSet<usize> = best.iter().copied().collect();
    let first_return =
        (0..ops.len()).filter(|i| !done.contains(i)).filter_map(|i| ops[i].complete.map(|c| (c, i))).min();
    let horizon = first_return.map_or(Duration::MAX, |(c, _)| c);
    let mut pending: Vec<usize> =
        (0..ops.len()).filter(|i| !done.contains(i) && ops[*i].invoke <= horizon).collect();
    pending.sort_by_key(|&i| ops[i].invoke);
    for i in pending.into_iter().take(12) {
        let _ = writeln!(s, "    {}", describe(ops[i]));
    }
    s
}

fn describe(e: &Entry) -> String {
    let done = e.complete.map_or_else(|| "never".to_owned(), |c| format!("{:.3}s", c.as_secs_f64()));
    format!(
        "client {} {} {:?} -> {:?} [{:.3}s .. {done}]",
        e.client,
        e.kind,
        e.op,
        e.outcome,
        e.invoke.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn e(client: usize, op: Op, outcome: Outcome, invoke: u64, complete: Option<u64>) -> Entry {
        Entry {
            key: "k".into(),
            client,
            kind: "test",
            op,
            outcome,
            invoke: ms(invoke),
            complete: complete.map(ms),
        }
    }

    fn read(v: Option<ValueId>) -> Outcome {
        Outcome::Value { value: v, holder: None }
    }

    const OK: Outcome = Outcome::Done(true);
    const NO: Outcome = Outcome::Done(false);

    #[test]
    fn sequential_history_is_linearizable() {
        let h = vec![
            e(0, Op::Put(1), OK, 0, Some(1)),
            e(1, Op::Read, read(Some(1)), 2, Some(3)),
            e(0, Op::Cas { expect: Some(1), value: 2 }, OK, 4, Some(5)),
            e(1, Op::Cas { expect: Some(1), value: 3 }, NO, 6, Some(7)),
            e(0, Op::Delete, OK, 8, Some(9)),
            e(1, Op::Read, read(None), 10, Some(11)),
        ];
        let r = check(&h, 1_000_000);
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.ops, 6);
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_a_violation() {
        let h = vec![
            e(0, Op::Put(1), OK, 0, Some(1)),
            e(0, Op::Put(2), OK, 2, Some(3)),
            // Starts after the second write completed, yet sees the first.
            e(1, Op::Read, read(Some(1)), 4, Some(5)),
        ];
        let r = check(&h, 1_000_000);
        assert_eq!(r.violations.len(), 1, "{r:?}");
        assert!(r.violations[0].1.contains("Read"), "{}", r.violations[0].1);
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        // The read overlaps the write, so either answer is fine.
        for seen in [Some(1), Some(2)] {
            let h = vec![
                e(0, Op::Put(1), OK, 0, Some(1)),
                e(0, Op::Put(2), OK, 2, Some(10)),
                e(1, Op::Read, read(seen), 3, Some(4)),
            ];
            assert!(check(&h, 1_000_000).ok());
        }
    }

    #[test]
    fn an_unknown_write_may_apply_late_or_never_but_not_be_seen_and_unseen() {
        let lost = e(0, Op::Put(2), Outcome::Unknown, 2, None);
        // Never applied.
        let h =
            vec![e(0, Op::Put(1), OK, 0, Some(1)), lost.clone(), e(1, Op::Read, read(Some(1)), 20, Some(21))];
        assert!(check(&h, 1_000_000).ok());
        // Applied long after the client gave up.
        let h =
            vec![e(0, Op::Put(1), OK, 0, Some(1)), lost.clone(), e(1, Op::Read, read(Some(2)), 20, Some(21))];
        assert!(check(&h, 1_000_000).ok());
        // Seen, then unseen again: not linearizable.
        let h = vec![
            e(0, Op::Put(1), OK, 0, Some(1)),
            lost,
            e(1, Op::Read, read(Some(2)), 20, Some(21)),
            e(1, Op::Read, read(Some(1)), 22, Some(23)),
        ];
        assert_eq!(check(&h, 1_000_000).violations.len(), 1);
    }

    #[test]
    fn two_successful_cas_from_the_same_value_are_a_violation() {
        let h = vec![
            e(0, Op::Put(1), OK, 0, Some(1)),
            e(1, Op::Cas { expect: Some(1), value: 2 }, OK, 2, Some(5)),
            e(2, Op::Cas { expect: Some(1), value: 3 }, OK, 2, Some(5)),
        ];
        assert_eq!(check(&h, 1_000_000).violations.len(), 1);
        // One of them failing is fine.
        let h = vec![
            e(0, Op::Put(1), OK, 0, Some(1)),
            e(1, Op::Cas { expect: Some(1), value: 2 }, OK, 2, Some(5)),
            e(2, Op::Cas { expect: Some(1), value: 3 }, NO, 2, Some(5)),
        ];
        assert!(check(&h, 1_000_000).ok());
    }

    #[test]
    fn two_sessions_holding_one_lock_at_once_is_a_violation() {
        let h = vec![
            e(0, Op::Lock { session: 1, value: 1 }, OK, 0, Some(1)),
            e(1, Op::Lock { session: 2, value: 2 }, OK, 2, Some(3)),
        ];
        assert_eq!(check(&h, 1_000_000).violations.len(), 1);
        let h = vec![
            e(0, Op::Lock { session: 1, value: 1 }, OK, 0, Some(1)),
            e(1, Op::Lock { session: 2, value: 2 }, NO, 2, Some(3)),
            e(0, Op::Put(3), OK, 4, Some(5)),
            e(1, Op::Read, Outcome::Value { value: Some(3), holder: Some(1) }, 6, Some(7)),
            e(0, Op::Unlock { session: 1, value: 4 }, OK, 8, Some(9)),
            e(1, Op::Lock { session: 2, value: 5 }, OK, 10, Some(11)),
            e(0, Op::Unlock { session: 1, value: 6 }, NO, 12, Some(13)),
        ];
        assert!(check(&h, 1_000_000).ok(), "{:?}", check(&h, 1_000_000));
    }

    #[test]
    fn keys_are_checked_independently() {
        let mut h = vec![e(0, Op::Put(1), OK, 0, Some(1)), e(1, Op::Read, read(Some(1)), 2, Some(3))];
        let mut other = e(1, Op::Read, read(Some(1)), 2, Some(3));
        other.key = "other".into();
        h.push(other);
        let r = check(&h, 1_000_000);
        assert_eq!((r.keys, r.violations.len()), (2, 1));
        assert_eq!(r.violations[0].0, "other");
    }

    #[test]
    fn a_search_over_budget_is_undecided_not_passed() {
        let h: Vec<Entry> = (0..40).map(|i| e(i, Op::Put(i as u32), OK, 0, Some(100))).collect();
        let r = check(&h, 10);
        assert!(!r.ok());
        assert_eq!(r.undecided, vec!["k".to_owned()]);
    }
}
