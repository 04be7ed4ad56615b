//! Authorization: the request path as rules see it ([`path`]) and the route rules that say what
//! a request must present ([`rules`]).

pub mod path;
pub mod rules;

pub use path::{route_path, PathError};
pub use rules::{AuthMode, PathMatch, Requirement, RouteMatch, RouteRule, ScopePattern, Template};
