//! The binary against a real `redis-server` (installed by `make setup`), called over gRPC with
//! the crate's own messages. Each test has its own Redis and service.

use std::path::Path;
use std::time::{Duration, Instant};

use ai_gateway_rls::proto::{
    Code, Entry, RateLimitDescriptor, RateLimitOverride, RateLimitRequest, RateLimitResponse,
    RateLimitUnit, SHOULD_RATE_LIMIT_PATH,
};
use test_harness::rate_limit_service::RateLimitService;
use test_harness::redis::Redis;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code as StatusCode, Request, Status};
use tonic_prost::ProstCodec;

const OK: i32 = Code::Ok as i32;
const OVER: i32 = Code::OverLimit as i32;

/// A blocking gRPC client for `ShouldRateLimit`.
struct Client {
    runtime: tokio::runtime::Runtime,
    channel: Channel,
}

impl Client {
    fn new(service: &RateLimitService) -> Self {
        Self::with_timeout(service, Duration::from_secs(5))
    }

    /// A client whose calls give up after `timeout`.
    fn with_timeout(service: &RateLimitService, timeout: Duration) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let endpoint = Endpoint::from_shared(format!("http://{}", service.addr()))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(2))
            .timeout(timeout);
        // The channel's worker is spawned on the runtime it is made in.
        let channel = runtime.block_on(async { endpoint.connect_lazy() });
        Self { runtime, channel }
    }

    fn call(&self, request: RateLimitRequest) -> Result<RateLimitResponse, Status> {
        self.runtime.block_on(async {
            let mut grpc = tonic::client::Grpc::new(self.channel.clone());
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(format!("not ready: {e}")))?;
            let codec = ProstCodec::<RateLimitRequest, RateLimitResponse>::default();
            let path = PathAndQuery::from_static(SHOULD_RATE_LIMIT_PATH);
            let response = grpc.unary(Request::new(request), path, codec).await?;
            Ok(response.into_inner())
        })
    }

    /// The overall code and each status's (code, remaining).
    fn ask(&self, descriptors: Vec<RateLimitDescriptor>) -> (i32, Vec<(i32, u32)>) {
        let response = self.call(request(descriptors)).expect("answered");
        let statuses = response
            .statuses
            .iter()
            .map(|s| (s.code, s.limit_remaining))
            .collect();
        (response.overall_code, statuses)
    }
}

fn start() -> (Redis, RateLimitService, Client) {
    let redis = Redis::start();
    let binary = Path::new(env!("CARGO_BIN_EXE_ai-gateway-rls"));
    let service = RateLimitService::start_binary(binary, &redis, 0);
    let client = Client::new(&service);
    (redis, service, client)
}

fn request(descriptors: Vec<RateLimitDescriptor>) -> RateLimitRequest {
    RateLimitRequest {
        domain: "ai-gateway".into(),
        descriptors,
        hits_addend: 0,
    }
}

/// `[limit=per-user, key=USER]`, `n` per minute, with these hits (`None`: the request's).
fn per_user(user: &str, n: u32, hits: Option<u64>) -> RateLimitDescriptor {
    RateLimitDescriptor {
        entries: vec![
            Entry {
                key: "limit".into(),
                value: "per-user".into(),
            },
            Entry {
                key: "key".into(),
                value: user.into(),
            },
        ],
        limit: Some(RateLimitOverride {
            requests_per_unit: n,
            unit: RateLimitUnit::Minute as i32,
        }),
        hits_addend: hits,
    }
}

#[test]
fn three_per_minute_admits_exactly_three_of_five() {
    let (_redis, _service, client) = start();
    let codes: Vec<i32> = (0..5)
        .map(|_| client.ask(vec![per_user("alice", 3, None)]).0)
        .collect();
    assert_eq!(codes, [OK, OK, OK, OVER, OVER]);

    let response = client
        .call(request(vec![per_user("alice", 3, None)]))
        .expect("answered");
    let reset = response.statuses[0]
        .duration_until_reset
        .expect("a reset time");
    assert!((0..=60).contains(&reset.seconds), "{reset:?}");
}

#[test]
fn different_keys_count_apart() {
    let (_redis, _service, client) = start();
    assert_eq!(client.ask(vec![per_user("alice", 1, None)]).0, OK);
    assert_eq!(client.ask(vec![per_user("bob", 1, None)]).0, OK);
    let (overall, statuses) =
        client.ask(vec![per_user("alice", 1, None), per_user("carol", 1, None)]);
    assert_eq!((overall, statuses), (OVER, vec![(OVER, 0), (OK, 0)]));
}

#[test]
fn check_only_admits_while_one_more_fits_and_never_counts() {
    let (_redis, _service, client) = start();
    let check = || per_user("alice", 2, Some(0));
    for _ in 0..3 {
        assert_eq!(client.ask(vec![check()]), (OK, vec![(OK, 2)]));
    }
    assert_eq!(client.ask(vec![per_user("alice", 2, None)]).1, [(OK, 1)]);
    assert_eq!(client.ask(vec![check()]), (OK, vec![(OK, 1)]));
    assert_eq!(client.ask(vec![per_user("alice", 2, None)]).1, [(OK, 0)]);
    assert_eq!(client.ask(vec![check()]), (OVER, vec![(OVER, 0)]));
    // An over check turns away the whole request: bob's hit is not counted.
    let (overall, _) = client.ask(vec![per_user("bob", 1, None), check()]);
    assert_eq!(overall, OVER);
    assert_eq!(client.ask(vec![per_user("bob", 1, None)]).0, OK);
}

#[test]
fn hits_over_the_limit_are_still_counted() {
    let (_redis, _service, client) = start();
    assert_eq!(
        client.ask(vec![per_user("alice", 10, Some(8))]).1,
        [(OK, 2)]
    );
    assert_eq!(
        client.ask(vec![per_user("alice", 10, Some(5))]).1,
        [(OVER, 0)]
    );
    // 13 counted, so 2 more do not fit (they would if the 5 had been dropped).
    assert_eq!(
        client.ask(vec![per_user("alice", 10, Some(2))]).1,
        [(OVER, 0)]
    );
    let mut by_request = request(vec![per_user("bob", 10, None)]);
    by_request.hits_addend = 7;
    let response = client.call(by_request).expect("answered");
    assert_eq!(response.statuses[0].limit_remaining, 3);
}

#[test]
fn redis_down_is_unavailable_and_back_works_again() {
    let (mut redis, _service, client) = start();
    assert_eq!(client.ask(vec![per_user("alice", 5, None)]).0, OK);

    redis.stop();
    let refused = client
        .call(request(vec![per_user("alice", 5, None)]))
        .expect_err("no answer without Redis");
    assert_eq!(refused.code(), StatusCode::Unavailable, "{refused:?}");

    redis.start_again();
    // The first calls may still meet the old connection while it reconnects.
    let deadline = Instant::now() + Duration::from_secs(10);
    let response = loop {
        match client.call(request(vec![per_user("alice", 5, None)])) {
            Ok(response) => break response,
            Err(status) if Instant::now() < deadline => {
                assert_eq!(status.code(), StatusCode::Unavailable, "{status:?}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(status) => panic!("still no answer with Redis back: {status:?}"),
        }
    };
    // A new Redis is empty: counting starts over.
    assert_eq!(response.overall_code, OK);
    assert_eq!(response.statuses[0].limit_remaining, 4);
}

#[test]
fn the_harness_slows_hangs_and_restarts_the_service() {
    let redis = Redis::start();
    let binary = Path::new(env!("CARGO_BIN_EXE_ai-gateway-rls"));
    let mut service = RateLimitService::start_binary(binary, &redis, 300);
    let client = Client::with_timeout(&service, Duration::from_secs(2));
    let timed = |client: &Client| {
        let begun = Instant::now();
        let result = client.call(request(vec![per_user("alice", 100, None)]));
        (result, begun.elapsed())
    };

    let (answer, took) = timed(&client);
    assert_eq!(answer.expect("answered").overall_code, OK);
    assert!(took >= Duration::from_millis(300), "{took:?}");

    service.suspend();
    let (answer, took) = timed(&client);
    let status = answer.expect_err("a suspended service does not answer");
    assert!(took >= Duration::from_secs(2), "{status:?} after {took:?}");
    service.resume();
    assert_eq!(timed(&client).0.expect("answered").overall_code, OK);

    let port = service.port();
    service.stop();
    assert!(
        timed(&client).0.is_err(),
        "a stopped service does not answer"
    );
    service.start_again();
    assert_eq!(service.port(), port);
    // Same Redis: the count goes on. 2 answered hits before this one; the call abandoned
    // while suspended may have been counted after the resume, or dropped.
    let response = Client::new(&service)
        .call(request(vec![per_user("alice", 100, None)]))
        .expect("answered after a restart");
    let remaining = response.statuses[0].limit_remaining;
    assert!((96..=97).contains(&remaining), "{remaining}");
}
