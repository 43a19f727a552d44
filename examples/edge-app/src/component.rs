//! The component's two faces: the imported store interface (bindings
//! generated from the repository's `wit/`, so additions to the interface
//! reach this app without copying files) and the exported
//! `wasi:http/incoming-handler`.

use wasip2::http::types::{IncomingRequest, ResponseOutparam};

use crate::{http, pages};

/// The imported `sqlite-sessions:store/sessions` interface.
pub mod store {
    wit_bindgen::generate!({
        inline: "
            package sqlite-sessions:edge-app;
            world app {
                import sqlite-sessions:store/sessions@0.1.0;
            }
        ",
        path: "../../wit",
        // The inline world's one import lives in another package.
        generate_all,
    });

    pub use self::sqlite_sessions::store::sessions::*;
}

struct App;

impl wasip2::exports::http::incoming_handler::Guest for App {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let response = match http::Request::read(&request) {
            Ok(req) => pages::respond(&req),
            Err(response) => response,
        };
        response.send(response_out);
    }
}

wasip2::http::proxy::export!(App);
