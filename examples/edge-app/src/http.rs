//! The HTTP edge of the app: reading a `wasi:http` incoming request into a
//! plain [`Request`], and sending a plain [`Response`] back. The pages never
//! touch `wasi:http` resources.

use std::io::{Read as _, Write};

use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

/// Form bodies larger than this are refused with 413: the login form is a
/// few dozen bytes, and the guest should not buffer whatever a client sends.
const MAX_FORM_BYTES: u64 = 4096;

/// What the pages need to know about a request.
pub struct Request {
    pub method: Method,
    /// The path without the query string.
    pub path: String,
    /// Every `Cookie` header, joined with `"; "` as RFC 6265 §5.4 says a
    /// single one would be.
    pub cookie: Option<String>,
    /// `application/x-www-form-urlencoded` fields of a POST body.
    pub form: Vec<(String, String)>,
    /// The `Sec-Fetch-Site` header, which browsers send with every request
    /// (`same-origin`, `same-site`, `cross-site` or `none`).
    pub fetch_site: Option<String>,
}

impl Request {
    /// Reads the method, path, cookies and (for POST) the form body.
    /// A body that is too large or unreadable becomes an error response.
    pub fn read(incoming: &IncomingRequest) -> Result<Self, Response> {
        let headers = incoming.headers();
        let cookie = header_values(&headers, "cookie");
        let fetch_site = header_values(&headers, "sec-fetch-site");
        drop(headers);

        let path_with_query = incoming.path_with_query().unwrap_or_else(|| "/".into());
        let path = match path_with_query.split_once('?') {
            Some((path, _query)) => path.to_owned(),
            None => path_with_query,
        };
        let method = incoming.method();
        let form = if matches!(method, Method::Post) {
            parse_form(&read_body(incoming)?)
        } else {
            Vec::new()
        };
        Ok(Self {
            method,
            path,
            cookie,
            form,
            fetch_site,
        })
    }

    /// The first value of a form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The values of a header, joined with `"; "`, or `None` if absent.
/// Values that are not UTF-8 are dropped: no cookie of ours contains such bytes.
fn header_values(headers: &Fields, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get(name)
        .into_iter()
        .filter_map(|v| String::from_utf8(v).ok())
        .collect();
    (!values.is_empty()).then(|| values.join("; "))
}

fn read_body(incoming: &IncomingRequest) -> Result<Vec<u8>, Response> {
    let unreadable = || Response::text(400, "The request body could not be read.");
    let body = incoming.consume().map_err(|()| unreadable())?;
    let mut bytes = Vec::new();
    {
        // The stream is a child of `body` and must be dropped first.
        let stream = body.stream().map_err(|()| unreadable())?;
        stream
            .take(MAX_FORM_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|_| unreadable())?;
    }
    drop(body);
    if bytes.len() as u64 > MAX_FORM_BYTES {
        return Err(Response::text(413, "The form is too large."));
    }
    Ok(bytes)
}

fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// A response to send: status, headers and a complete body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Response {
    /// A plain-text response that involves no session.
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type", "text/plain; charset=utf-8".into()),
                ("cache-control", "no-store".into()),
            ],
            body: format!("{body}\n"),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Sends the response. Failures past this point can only be reported to
    /// the host's log: the client has the status line already or never will.
    pub fn send(self, out: ResponseOutparam) {
        let entries: Vec<(String, Vec<u8>)> = self
            .headers
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.into_bytes()))
            .collect();
        let fields = match Fields::from_list(&entries) {
            Ok(fields) => fields,
            Err(e) => {
                // Only a bug in this app builds an invalid header.
                eprintln!("edge-app: invalid response header: {e:?}");
                Fields::new()
            }
        };
        let response = OutgoingResponse::new(fields);
        if response.set_status_code(self.status).is_err() {
            eprintln!("edge-app: invalid status {}", self.status);
        }
        let Ok(body) = response.body() else {
            eprintln!("edge-app: response body already taken");
            return;
        };
        ResponseOutparam::set(out, Ok(response));
        match body.write() {
            Ok(mut stream) => {
                // `std::io::Write::flush`, not the inherent (non-blocking) one.
                let written = stream
                    .write_all(self.body.as_bytes())
                    .and_then(|()| Write::flush(&mut stream));
                if let Err(e) = written {
                    eprintln!("edge-app: writing the response body: {e}");
                }
                // The stream is a child of `body` and must be dropped first.
                drop(stream);
            }
            Err(()) => eprintln!("edge-app: response body stream already taken"),
        }
        if let Err(e) = OutgoingBody::finish(body, None) {
            eprintln!("edge-app: finishing the response body: {e:?}");
        }
    }
}
