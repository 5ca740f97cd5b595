//! Simulated identities: small in memory, encoded byte for byte as a client agent's
//! `NodeIdentity` (see the parent module).

use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr};

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap as _, SerializeStruct as _, Serializer};
use serde::{Deserialize, Serialize};

use super::{BASE_GENERATION, FIELDS, FIRST_ADDR, GOSSIP_PORT};
use crate::gossip::identity::Intent;

/// A simulated agent's identity: encodes as the `NodeIdentity` of a client agent called
/// `node-NNNNN` at 10.0.0.0 + index + 1, port 8301, with Consul's tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SimId {
    pub(super) agent: u16,
    pub(super) generation: u16,
    pub(super) intent: Intent,
}

impl SimId {
    pub(super) fn new(agent: usize) -> Self {
        SimId { agent: agent as u16, generation: 0, intent: Intent::None }
    }

    pub(super) fn index(&self) -> usize {
        usize::from(self.agent)
    }

    pub(super) fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(Ipv4Addr::from(FIRST_ADDR + u32::from(self.agent)).into(), GOSSIP_PORT)
    }

    /// The real identity this one stands for (its encoding is the same).
    #[cfg(test)]
    pub(crate) fn to_node_identity(self) -> crate::gossip::identity::NodeIdentity {
        let (mut name, mut id, mut build) = (Text::default(), Text::default(), Text::default());
        self.write_strings(&mut name, &mut id, &mut build);
        let tags = tag_entries(id.as_str(), build.as_str())
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into_iter()
            .collect();
        crate::gossip::identity::NodeIdentity {
            addr: self.socket_addr(),
            name: name.as_str().to_owned(),
            generation: BASE_GENERATION + u64::from(self.generation),
            intent: self.intent,
            tags,
        }
    }

    fn write_strings(&self, name: &mut Text, id: &mut Text, build: &mut Text) {
        let h = splitmix(u64::from(self.agent));
        let (a, b) = (h >> 32, h & 0xffff_ffff);
        let _ = write!(name, "node-{:05}", self.agent);
        let _ = write!(id, "{a:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", b >> 16, b & 0xfff, a & 0xfff, h >> 16);
        let _ = write!(build, "{}:sekisho-{}", crate::CONSUL_COMPAT_VERSION, crate::VERSION);
    }
}

/// The tags `agent::start_gossip` gives a client agent, in `BTreeMap` order.
fn tag_entries<'a>(id: &'a str, build: &'a str) -> [(&'static str, &'a str); 6] {
    [("build", build), ("dc", "dc1"), ("id", id), ("role", "node"), ("segment", ""), ("vsn", "2")]
}

pub(super) fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A short string built on the stack (names and tags are formatted at every encoding).
struct Text {
    bytes: [u8; 48],
    len: usize,
}

impl Default for Text {
    fn default() -> Self {
        Text { bytes: [0; 48], len: 0 }
    }
}

impl Text {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

struct Tags<'a>(&'a str, &'a str);

impl Serialize for Tags<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let entries = tag_entries(self.0, self.1);
        let mut map = s.serialize_map(Some(entries.len()))?;
        for (k, v) in entries {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Field by field what `#[derive(Serialize)]` does for `NodeIdentity`.
impl Serialize for SimId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (mut name, mut id, mut build) = (Text::default(), Text::default(), Text::default());
        self.write_strings(&mut name, &mut id, &mut build);
        let mut st = s.serialize_struct("NodeIdentity", FIELDS.len())?;
        st.serialize_field("addr", &self.socket_addr())?;
        st.serialize_field("name", name.as_str())?;
        st.serialize_field("generation", &(BASE_GENERATION + u64::from(self.generation)))?;
        st.serialize_field("intent", &self.intent)?;
        st.serialize_field("tags", &Tags(id.as_str(), build.as_str()))?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for SimId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct("NodeIdentity", FIELDS, IdVisitor)
    }
}

struct IdVisitor;

impl<'de> Visitor<'de> for IdVisitor {
    type Value = SimId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a simulated NodeIdentity")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SimId, A::Error> {
        let missing = |i| de::Error::invalid_length(i, &"5 fields");
        let addr: SocketAddr = seq.next_element()?.ok_or_else(|| missing(0))?;
        let _name: &'de str = seq.next_element()?.ok_or_else(|| missing(1))?;
        let generation: u64 = seq.next_element()?.ok_or_else(|| missing(2))?;
        let intent: Intent = seq.next_element()?.ok_or_else(|| missing(3))?;
        let SkipTags = seq.next_element()?.ok_or_else(|| missing(4))?;
        let SocketAddr::V4(v4) = addr else { return Err(de::Error::custom("not a simulated address")) };
        let agent = u32::from(*v4.ip()).checked_sub(FIRST_ADDR).and_then(|a| u16::try_from(a).ok());
        let generation = generation.checked_sub(BASE_GENERATION).and_then(|g| u16::try_from(g).ok());
        match (agent, generation) {
            (Some(agent), Some(generation)) => Ok(SimId { agent, generation, intent }),
            _ => Err(de::Error::custom("not a simulated identity")),
        }
    }
}

/// Reads a tag map without allocating.
struct SkipTags;

impl<'de> Deserialize<'de> for SkipTags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(SkipTagsVisitor)
    }
}

struct SkipTagsVisitor;

impl<'de> Visitor<'de> for SkipTagsVisitor {
    type Value = SkipTags;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of tags")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SkipTags, A::Error> {
        while map.next_entry::<&'de str, &'de str>()?.is_some() {}
        Ok(SkipTags)
    }
}

/// Mirrors `NodeIdentity`'s rules: renew to the next generation unless leaving; the higher
/// (generation, intent) wins an address (name and tags are equal at one address here).
impl foca::Identity for SimId {
    type Addr = u16;

    fn renew(&self) -> Option<Self> {
        let generation = self.generation.saturating_add(1);
        (self.intent == Intent::None).then_some(SimId { generation, ..*self })
    }

    fn addr(&self) -> u16 {
        self.agent
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        (self.generation, self.intent) > (adversary.generation, adversary.intent)
    }
}
