//! The gRPC service, by hand on tonic's server primitives (no generated code).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

use crate::decider::{Decider, Refusal};
use crate::proto::{RateLimitRequest, RateLimitResponse, SERVICE_NAME, SHOULD_RATE_LIMIT_PATH};

/// `envoy.service.ratelimit.v3.RateLimitService`, answering `ShouldRateLimit`.
#[derive(Clone)]
pub struct RateLimitServer {
    decider: Arc<Decider>,
    /// Waited before each decision, to play a slow service.
    delay: Duration,
}

impl RateLimitServer {
    pub fn new(decider: Decider, delay: Duration) -> Self {
        Self {
            decider: Arc::new(decider),
            delay,
        }
    }
}

impl NamedService for RateLimitServer {
    const NAME: &'static str = SERVICE_NAME;
}

impl Service<http::Request<Body>> for RateLimitServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != SHOULD_RATE_LIMIT_PATH {
            let path = request.uri().path().to_string();
            return Box::pin(async move {
                Ok(Status::unimplemented(format!("no method {path}")).into_http())
            });
        }
        let method = ShouldRateLimit(self.clone());
        Box::pin(async move {
            let mut grpc = Grpc::new(ProstCodec::<RateLimitResponse, RateLimitRequest>::default());
            Ok(grpc.unary(method, request).await)
        })
    }
}

/// The one method, as tonic's unary handler.
struct ShouldRateLimit(RateLimitServer);

impl UnaryService<RateLimitRequest> for ShouldRateLimit {
    type Response = RateLimitResponse;
    type Future = BoxFuture<Response<RateLimitResponse>, Status>;

    fn call(&mut self, request: Request<RateLimitRequest>) -> Self::Future {
        let server = self.0.clone();
        Box::pin(async move {
            if !server.delay.is_zero() {
                tokio::time::sleep(server.delay).await;
            }
            let request = request.into_inner();
            match server.decider.decide(&request).await {
                Ok(response) => Ok(Response::new(response)),
                Err(refusal) => Err(to_status(refusal)),
            }
        })
    }
}

fn to_status(refusal: Refusal) -> Status {
    match refusal {
        Refusal::InvalidArgument(why) => Status::invalid_argument(why),
        Refusal::Unavailable(why) => {
            eprintln!("ai-gateway-rls: unavailable: {why}");
            Status::unavailable(format!("rate-limit counters unavailable: {why}"))
        }
        Refusal::Internal(why) => {
            eprintln!("ai-gateway-rls: internal error: {why}");
            Status::internal(why)
        }
    }
}
