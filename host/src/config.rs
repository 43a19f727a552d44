//! Store settings with every option left to the component's default.

use crate::bindings::exports::sqlite_sessions::store::sessions::{Config, CookieConfig};

/// Where [`Runtime::request`](crate::Runtime::request) preopens the session
/// directory in the guest.
pub const DEFAULT_GUEST_DIR: &str = "/sessions";

/// A `config` for [`DEFAULT_GUEST_DIR`] with every option left to the
/// component's default.
pub fn default_config() -> Config {
    Config {
        directory: DEFAULT_GUEST_DIR.to_owned(),
        max_key_bytes: None,
        max_value_bytes: None,
        max_session_bytes: None,
        max_keys: None,
        max_live_sessions: None,
        idle_timeout_seconds: None,
        absolute_timeout_seconds: None,
        activity_granularity_seconds: None,
        busy_timeout_ms: None,
        lock_lease_ms: None,
        durability: None,
        shared_directory: None,
        check_directory: None,
        file_name_secret: None,
        signing_keys: None,
        cookie: default_cookie_config(),
    }
}

/// A `cookie-config` with every field left to the component's default.
pub fn default_cookie_config() -> CookieConfig {
    CookieConfig {
        name: None,
        path: None,
        domain: None,
        secure: None,
        http_only: None,
        same_site: None,
        persistent: None,
    }
}
