//! The hickory request handler: classify the question, read the catalog, build the answer,
//! fit it to the transport, and send it through [`send`], the single exit of every response.

use std::net::IpAddr;

use async_trait::async_trait;
use hickory_proto::op::{Edns, Header, HeaderCounts, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::BinDecoder;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};

use super::DnsContext;
use super::answer::{Answerer, Reply};
use super::catalog::{CatalogRead, LocalCatalog};
use super::name::{Domain, Lookup, Target, Zones};
use super::query::{QueryAnswer, QueryLookup};
use super::recursor::Recursor;
use super::trim::{self, Budget, Questions};
use crate::config::DnsConfig;

/// The catalog service whose instances are the domain's name servers.
const SERVER_SERVICE: &str = "consul";

/// Answers DNS questions for one agent.
pub(crate) struct Handler {
    catalog: Box<dyn CatalogRead>,
    /// Reads of other datacenters' catalogs are made through this one.
    local: LocalCatalog,
    translate_wan_addrs: bool,
    zones: Zones,
    domain: Name,
    alt_domain: Option<Name>,
    datacenter: String,
    /// This agent's node (prepared queries' `Near: "_agent"`).
    node_name: String,
    cfg: DnsConfig,
    recursor: Option<Recursor>,
    /// `dns_config.rate_limit_per_client`: queries per second per client IP.
    rate: Option<parking_lot::Mutex<crate::net::limit::PerIpBuckets>>,
}

/// Client IPs the DNS rate limit tracks at most (see [`crate::net::limit::PerIpBuckets`]).
const RATE_MAX_CLIENTS: usize = 65_536;

/// The per-client buckets for `dns_config.rate_limit_per_client` (one second of burst).
fn rate_limit(cfg: &DnsConfig) -> Option<parking_lot::Mutex<crate::net::limit::PerIpBuckets>> {
    let rate = f64::from(cfg.rate_limit_per_client);
    (rate > 0.0).then(|| {
        let now = std::time::Instant::now();
        parking_lot::Mutex::new(crate::net::limit::PerIpBuckets::new(rate, rate, RATE_MAX_CLIENTS, now))
    })
}

fn fqdn(domain: &str) -> Name {
    Name::from_ascii(format!("{}.", domain.trim_end_matches('.'))).unwrap_or_else(|_| Name::root())
}

impl Handler {
    pub(crate) fn new(ctx: DnsContext) -> Handler {
        let recursor =
            Recursor::new(ctx.recursors, &ctx.config.recursor_strategy, ctx.config.recursor_timeout);
        let local = LocalCatalog::new(ctx.server, ctx.acl);
        Handler {
            catalog: Box::new(local.clone()),
            local,
            translate_wan_addrs: ctx.translate_wan_addrs,
            zones: Zones::new(&ctx.domain, ctx.alt_domain.as_deref(), &ctx.datacenter),
            domain: fqdn(&ctx.domain),
            alt_domain: ctx.alt_domain.as_deref().map(fqdn),
            datacenter: ctx.datacenter.to_ascii_lowercase(),
            node_name: ctx.node_name,
            rate: rate_limit(&ctx.config),
            cfg: ctx.config,
            recursor,
        }
    }

    /// Takes a token from the client's bucket (always true without a rate limit).
    fn within_rate(&self, client: IpAddr) -> bool {
        self.rate.as_ref().is_none_or(|r| r.lock().allow(client, std::time::Instant::now()))
    }

    async fn reply(&self, request: &Request) -> Reply {
        if request.metadata.op_code != OpCode::Query {
            return Reply::error(ResponseCode::NotImp);
        }
        let Ok(info) = request.request_info() else { return Reply::error(ResponseCode::FormErr) };
        let qname = Name::from(info.query.name());
        let qtype = info.query.query_type();
        let labels: Vec<String> =
            qname.iter().map(|l| String::from_utf8_lossy(l).to_ascii_lowercase()).collect();
        let mut reply = match self.zones.classify(&labels, qtype == RecordType::SRV) {
            Target::Zone(domain, lookup) => {
                let mut reply = self.zone_reply(domain, lookup, &qname, qtype, request.src().ip()).await;
                self.fit(request, &mut reply);
                reply
            }
            Target::Reverse(ip) => self.reverse(request, ip, &qname, qtype).await,
            Target::External => self.recurse(request).await,
        };
        if self.recursor.is_some() {
            reply.recursion_available = true;
        }
        reply
    }

    fn answerer<'a>(&'a self, domain: &'a Name, qname: &'a Name, qtype: RecordType) -> Answerer<'a> {
        Answerer { cfg: &self.cfg, datacenter: &self.datacenter, domain, qname, qtype }
    }

    async fn zone_reply(
        &self,
        domain: Domain,
        lookup: Lookup,
        qname: &Name,
        qtype: RecordType,
        src: IpAddr,
    ) -> Reply {
        let domain = match domain {
            Domain::Alt => self.alt_domain.as_ref().unwrap_or(&self.domain),
            Domain::Primary => &self.domain,
        };
        let a = self.answerer(domain, qname, qtype);
        if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            return a.negative(ResponseCode::NotImp);
        }
        // Prepared queries run where they are defined, `.query.<dc>` in that datacenter.
        let lookup = match lookup {
            Lookup::Query(name) => return self.prepared_query(&a, name, None, src).await,
            Lookup::OtherDatacenter(dc, inner) => match *inner {
                Lookup::Query(name) => return self.prepared_query(&a, name, Some(dc), src).await,
                inner => Lookup::OtherDatacenter(dc, Box::new(inner)),
            },
            other => other,
        };
        if let Lookup::OtherDatacenter(dc, inner) = lookup {
            // Answered from that datacenter's catalog; target names carry its name.
            let remote = self.local.in_datacenter(&dc, self.translate_wan_addrs);
            let a = Answerer { datacenter: &dc, ..a };
            let reply = Self::answer(&remote, &a, *inner, qname).await;
            return if remote.failed() { Reply::error(ResponseCode::ServFail) } else { reply };
        }
        Self::answer(self.catalog.as_ref(), &a, lookup, qname).await
    }

    async fn answer(catalog: &dyn CatalogRead, a: &Answerer<'_>, lookup: Lookup, qname: &Name) -> Reply {
        match lookup {
            Lookup::Apex => a.apex(catalog.service_instances(SERVER_SERVICE, None).await),
            Lookup::Node(node) => a.node(catalog.node(&node).await.as_ref()),
            Lookup::Service { name, tag } => {
                a.service(&name, catalog.service_instances(&name, tag.as_deref()).await)
            }
            Lookup::Addr(ip) => a.addr(ip),
            Lookup::Unsupported(kind) => {
                tracing::debug!(%qname, kind, "DNS lookup form not implemented");
                a.negative(ResponseCode::NotImp)
            }
            // Prepared queries are answered by `prepared_query`, before this.
            Lookup::OtherDatacenter(..) | Lookup::Query(_) => Reply::error(ResponseCode::ServFail),
            Lookup::Invalid => a.nxdomain(),
        }
    }

    /// `<name>.query[.<dc>].<domain>`: the query's execution, with its `DNS.TTL`, else the
    /// `service_ttl` of the service it selected; SRV targets name the answering datacenter.
    async fn prepared_query(
        &self,
        a: &Answerer<'_>,
        name: String,
        datacenter: Option<String>,
        src: IpAddr,
    ) -> Reply {
        let lookup = QueryLookup {
            name,
            datacenter,
            agent: self.node_name.clone(),
            source: Some(src),
            token: None,
            stale: self.cfg.allow_stale,
        };
        match self.catalog.prepared_query(lookup).await {
            QueryAnswer::NotFound => a.nxdomain(),
            QueryAnswer::Failed(e) => {
                tracing::debug!(qname = %a.qname, error = %e, "DNS prepared query failed");
                Reply::error(ResponseCode::ServFail)
            }
            QueryAnswer::Found(r) => {
                let ttl = match r.dns.ttl.as_str() {
                    "" => super::answer::service_ttl(&self.cfg, &r.service),
                    t => crate::config::parse_go_duration(t).unwrap_or_default(),
                };
                let dc = r.datacenter.to_ascii_lowercase();
                let a = Answerer {
                    cfg: a.cfg,
                    datacenter: &dc,
                    domain: a.domain,
                    qname: a.qname,
                    qtype: a.qtype,
                };
                a.prepared_query(r.nodes.into_iter().map(Into::into).collect(), ttl)
            }
        }
    }

    /// PTR from the catalog; a miss goes to the recursors when there are any.
    async fn reverse(&self, request: &Request, ip: Option<IpAddr>, qname: &Name, qtype: RecordType) -> Reply {
        let a = self.answerer(&self.domain, qname, qtype);
        if let Some(ip) = ip {
            let nodes = self.catalog.nodes_with_address(ip).await;
            if let Some(mut reply) = a.ptr(&nodes) {
                self.fit(request, &mut reply);
                return reply;
            }
        }
        if self.recursor.is_some() { self.recurse(request).await } else { a.nxdomain() }
    }

    async fn recurse(&self, request: &Request) -> Reply {
        let Some(recursor) = &self.recursor else { return Reply::error(ResponseCode::Refused) };
        match recursor.forward(request.as_slice(), request.protocol() == Protocol::Tcp).await {
            Some(answer) => relay(answer),
            None => Reply { recursion_available: true, ..Reply::error(ResponseCode::ServFail) },
        }
    }

    /// Applies the transport's budget; TC is set when answers were cut and `enable_truncate`.
    fn fit(&self, request: &Request, reply: &mut Reply) {
        let budget = if request.protocol() == Protocol::Udp {
            Budget::udp(request.edns.as_ref().map(Edns::max_payload), self.cfg.udp_answer_limit)
        } else {
            Budget::tcp()
        };
        let questions = Questions { bytes: request.queries.as_bytes(), count: request.queries.len() };
        let edns = response_edns(request);
        if trim::fit(reply, questions, edns.as_ref(), budget) && self.cfg.enable_truncate {
            reply.truncated = true;
        }
    }
}

/// An upstream answer as our reply (the caller adds RA).
fn relay(m: Message) -> Reply {
    Reply {
        rcode: m.metadata.response_code,
        authoritative: m.metadata.authoritative,
        recursion_available: true,
        truncated: m.metadata.truncation,
        answers: m.answers,
        authorities: m.authorities,
        additionals: m.additionals,
        edns: m.edns,
    }
}

/// The OPT record for a client that sent one: its payload size echoed (at least 512).
fn response_edns(request: &Request) -> Option<Edns> {
    let req = request.edns.as_ref()?;
    let mut edns = Edns::new();
    edns.set_max_payload(req.max_payload());
    Some(edns)
}

#[async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        if !self.within_rate(request.src().ip()) {
            crate::telemetry::incr(
                crate::telemetry::names::LIMIT_REJECTED,
                &[("limit", "dns_config.rate_limit_per_client")],
            );
            return send(request, response_handle, Reply::error(ResponseCode::Refused)).await;
        }
        let reply = self.reply(request).await;
        send(request, response_handle, reply).await
    }
}

/// Encodes and sends `reply`. Every response the handler produces leaves through here (hickory
/// itself answers only packets it cannot decode, with FORMERR, before the handler runs).
async fn send<R: ResponseHandler>(request: &Request, mut handle: R, reply: Reply) -> ResponseInfo {
    let qtype = request.queries.queries().first().map(|q| q.query_type());
    let rcode = reply.rcode;
    let qtype_text = qtype.map_or_else(|| "NONE".to_owned(), |t| t.to_string());
    crate::telemetry::dns_query(&qtype_text, &rcode.to_string());
    tracing::trace!(?qtype, %rcode, answers = reply.answers.len(), "DNS response");
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = rcode;
    metadata.authoritative = reply.authoritative;
    metadata.truncation = reply.truncated;
    metadata.recursion_available = reply.recursion_available;
    let edns = reply.edns.clone().or_else(|| response_edns(request));
    // A packet with several questions is answered FORMERR without echoing them: their echo
    // alone may not fit a UDP answer, and hickory would then send SERVFAIL (and log an error)
    // instead. A query has exactly one question (RFC 9619).
    let no_questions = Queries::read(&mut BinDecoder::new(&[]), 0).ok();
    let mut builder = match no_questions.as_ref().filter(|_| request.queries.len() > 1) {
        Some(none) => MessageResponseBuilder::new(none, None),
        None => MessageResponseBuilder::from_message_request(request),
    };
    if let Some(edns) = &edns {
        builder.edns(edns);
    }
    let response = builder.build(
        metadata,
        reply.answers.iter(),
        reply.authorities.iter(),
        std::iter::empty(),
        reply.additionals.iter(),
    );
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, "failed to send a DNS response");
            let mut metadata =
                Metadata::new(request.metadata.id, MessageType::Response, request.metadata.op_code);
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() })
        }
    }
}

/// Answers one raw DNS packet the way the hickory server would on `protocol`: packets that do
/// not decode are `Err` (hickory drops them or answers FORMERR before any handler runs), and
/// responses are ignored (hickory never handles those); otherwise the encoded response, or the
/// encoder's error if it does not fit its transport. For the fuzz targets ([`crate::fuzzing`]).
pub(crate) async fn answer_raw(
    handler: &Handler,
    raw: &[u8],
    tcp: bool,
) -> Result<Option<super::Encoded>, String> {
    use hickory_server::net::runtime::TokioTime;
    let protocol = if tcp { Protocol::Tcp } else { Protocol::Udp };
    let src = std::net::SocketAddr::from(([127, 0, 0, 1], 53535));
    let request = Request::from_bytes(raw.to_vec(), src, protocol).map_err(|e| e.to_string())?;
    if request.metadata.message_type == MessageType::Response {
        return Ok(None);
    }
    let capture = Capture { out: std::sync::Arc::default(), protocol };
    handler.handle_request::<_, TokioTime>(&request, capture.clone()).await;
    let out = capture.out.lock().take();
    Ok(out)
}

/// A [`ResponseHandler`] that keeps the encoded response (hickory's UDP/TCP size limits).
#[derive(Clone)]
struct Capture {
    out: std::sync::Arc<parking_lot::Mutex<Option<super::Encoded>>>,
    protocol: Protocol,
}

#[async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: hickory_server::zone_handler::MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, hickory_server::net::NetError> {
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = hickory_proto::serialize::binary::BinEncoder::new(&mut bytes);
        encoder.set_max_size(match self.protocol {
            Protocol::Udp => response.edns().map_or(512, Edns::max_payload),
            _ => u16::MAX,
        });
        let emitted = response.destructive_emit(&mut encoder);
        let (result, info) = match emitted {
            Ok(info) => (Ok(bytes), Ok(info)),
            Err(e) => (Err(e.to_string()), Err(e.into())),
        };
        *self.out.lock() = Some(result);
        info
    }
}
