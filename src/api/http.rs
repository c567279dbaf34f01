//! What every adapter shares: the request view, body parsing, bearer
//! extraction, and JSON responses.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::auth::Principal;
use crate::domain::external::Provider;
use crate::domain::{ClientInfo, Error};
use crate::server::RequestContext;
use crate::server::context::RequestId;

/// Longest User-Agent kept with a session.
const MAX_USER_AGENT: usize = 256;

/// A request as adapters see it: head, full body, route parameters.
pub struct Req {
    pub uri: http::Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Route parameters (`{id}` and the like), in route order.
    pub params: Vec<(String, String)>,
    /// Client address and request id.
    pub ctx: RequestContext,
}

impl Req {
    /// The client as the domain sees it.
    pub fn client(&self) -> ClientInfo {
        let user_agent = self
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(MAX_USER_AGENT)
            .collect();
        ClientInfo {
            ip: self.ctx.client_ip,
            user_agent,
        }
    }

    /// A route parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, percent-decoded (`None` also for a query string
    /// that is not UTF-8, which the dispatcher refuses first).
    pub fn query(&self, name: &str) -> Option<String> {
        let query = self.uri.query()?;
        form_pairs(query.as_bytes())?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Whether the query string, if any, decodes to UTF-8.
    pub fn query_is_utf8(&self) -> bool {
        self.uri
            .query()
            .is_none_or(|q| form_pairs(q.as_bytes()).is_some())
    }

    /// The credential of an `Authorization: Bearer` header. `Err` when the
    /// header is present but not a single well-formed bearer credential.
    pub fn bearer(&self) -> Result<Option<&str>, MalformedAuthorization> {
        let bad = MalformedAuthorization;
        let mut values = self.headers.get_all(http::header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(bad);
        }
        let value = value.to_str().map_err(|_| bad)?;
        let (scheme, token) = value.split_once(' ').ok_or(bad)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(bad);
        }
        let token = token.trim();
        if token.is_empty() || !token.bytes().all(is_b64token_byte) {
            return Err(bad);
        }
        Ok(Some(token))
    }

    /// The credential of a request: an `Authorization: Bearer` header, or,
    /// when `query_tokens` is on and there is no header, an opaque token
    /// (`lk_ot_`, the token-and-social-login document's kind) in the
    /// `token` query parameter. Other kinds are never taken from a URL,
    /// where proxies and browsers keep them.
    pub fn credential(
        &self,
        query_tokens: bool,
    ) -> Result<Option<Credential<'_>>, MalformedAuthorization> {
        match self.bearer()? {
            Some(token) => Ok(Some(Credential::Header(token))),
            None if query_tokens => Ok(self
                .query("token")
                .filter(|t| t.starts_with(crate::domain::sessions::OPAQUE_PREFIX))
                .map(Credential::Query)),
            None => Ok(None),
        }
    }

    /// Whether the body is declared as JSON.
    pub fn is_json(&self) -> bool {
        media_type(&self.headers).is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
    }

    /// Whether the body is declared as an HTML form.
    pub fn is_form(&self) -> bool {
        media_type(&self.headers).is_some_and(|m| m == "application/x-www-form-urlencoded")
    }
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// An Authorization header that is not one well-formed bearer credential.
#[derive(Debug, Clone, Copy)]
pub struct MalformedAuthorization;

/// A request's credential and where it was found.
pub enum Credential<'a> {
    /// An `Authorization: Bearer` header.
    Header(&'a str),
    /// The `token` query parameter, decoded.
    Query(String),
}

impl Credential<'_> {
    /// The credential itself.
    pub fn token(&self) -> &str {
        match self {
            Credential::Header(token) => token,
            Credential::Query(token) => token,
        }
    }
}

/// RFC 6750's b64token characters.
fn is_b64token_byte(b: u8) -> bool {
    B64TOKEN[usize::from(b)]
}

/// The bytes of RFC 6750's `b64token`, as a table: every request with a
/// credential checks each of its few hundred bytes.
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=');
        b += 1;
    }
    table
};

/// Why a body could not be used. Each adapter says it in its document's
/// words; none carries a parser's message or a type name, only the name of
/// the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Not declared as JSON.
    UnsupportedMediaType,
    /// Declared as JSON but not parseable as JSON.
    NotJson,
    /// JSON, but not an object.
    NotObject,
    /// A field the document does not have.
    UnknownField(String),
    /// A field the document requires is absent.
    MissingField(String),
    /// A field whose value is of the wrong type (or not an accepted value).
    WrongType(String),
}

/// Longest field name an error repeats back; a longer one is cut.
const MAX_FIELD_ECHO: usize = 64;

impl BodyError {
    /// The offending field, when one is to blame.
    pub fn field(&self) -> Option<&str> {
        match self {
            BodyError::UnknownField(f) | BodyError::MissingField(f) | BodyError::WrongType(f) => {
                Some(f)
            }
            _ => None,
        }
    }

    /// Plain words for the problem, naming the field.
    pub fn describe(&self) -> String {
        match self {
            BodyError::UnsupportedMediaType => "the body must be application/json".into(),
            BodyError::NotJson => "the body is not valid JSON".into(),
            BodyError::NotObject => "the body must be a JSON object".into(),
            BodyError::UnknownField(f) => format!("unknown field: {f}"),
            BodyError::MissingField(f) => format!("missing field: {f}"),
            BodyError::WrongType(f) => format!("wrong type for field: {f}"),
        }
    }
}

/// A field name as it may be repeated to the client: bounded, without
/// control characters (the name of an unknown field is the client's own).
fn field_echo(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(MAX_FIELD_ECHO)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if name.chars().count() > MAX_FIELD_ECHO {
        out.push('…');
    }
    out
}

/// Parses a JSON body into `T`. Every request body of every API is a JSON
/// object; anything else (an array, which serde would otherwise match to
/// a struct's fields by position, a bare string) is refused.
///
/// The object is decoded field by field through [`FieldMap`], which
/// remembers which field a failure belongs to and classifies it through
/// serde's own hooks (`unknown_field`, `missing_field`), so no parser
/// message is ever read or passed on.
pub fn json_body<T: DeserializeOwned>(req: &Req) -> Result<T, BodyError> {
    if !req.is_json() {
        return Err(BodyError::UnsupportedMediaType);
    }
    match serde_json::from_slice::<Unique>(&req.body).map(|u| u.0) {
        Ok(serde_json::Value::Object(map)) => {
            T::deserialize(FieldMap { map }).map_err(|e| match e {
                FieldError::Unknown(f) => BodyError::UnknownField(field_echo(&f)),
                FieldError::Missing(f) => BodyError::MissingField(field_echo(&f)),
                FieldError::Value(f) => BodyError::WrongType(field_echo(&f)),
                // Nothing in a flat object reaches here but a failure the
                // derive reports without a field; it is still not the
                // expected object.
                FieldError::Other => BodyError::NotObject,
            })
        }
        Ok(_) => Err(BodyError::NotObject),
        Err(_) => Err(BodyError::NotJson),
    }
}

/// A JSON value in which no object names a field twice, at any depth.
/// RFC 8259 leaves a repeated name to the parser (serde_json keeps the
/// last); I-JSON (RFC 7493) forbids it, and a body that a proxy reads as
/// one account and the server as another is refused as malformed rather
/// than guessed at. serde_json's own nesting limit still applies, since
/// it drives this visitor.
struct Unique(serde_json::Value);

impl<'de> serde::Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Unique, D::Error> {
        d.deserialize_any(UniqueVisitor)
    }
}

/// Builds a [`Unique`] as serde_json reads it.
struct UniqueVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Unique, E> {
        Ok(Unique(serde_json::Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Unique, E> {
        Ok(Unique(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Unique, E> {
        Ok(Unique(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Unique, E> {
        // JSON numbers are finite, so this is never `Null` in practice.
        Ok(Unique(
            serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into),
        ))
    }

    fn visit_str<E>(self, v: &str) -> Result<Unique, E> {
        Ok(Unique(serde_json::Value::String(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<Unique, E> {
        Ok(Unique(serde_json::Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique(serde_json::Value::Null))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Unique(serde_json::Value::Array(items)))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        use serde::de::Error as _;
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Unique(value) = map.next_value()?;
            if object.insert(key, value).is_some() {
                return Err(A::Error::custom("a field is given twice"));
            }
        }
        Ok(Unique(serde_json::Value::Object(object)))
    }
}

/// A body as [`json_body`] reads it, for an adapter that takes its
/// fields itself: `None` unless it is one JSON object that names no field
/// twice.
pub fn json_object(body: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_slice::<Unique>(body) {
        Ok(Unique(serde_json::Value::Object(map))) => Some(map),
        _ => None,
    }
}

/// A JSON object handed to a derived `Deserialize` one field at a time.
struct FieldMap {
    /// The body's top-level fields.
    map: serde_json::Map<String, serde_json::Value>,
}

/// A failure, by kind and field; never a parser's text.
#[derive(Debug)]
enum FieldError {
    /// A field the type does not have (only for `deny_unknown_fields`).
    Unknown(String),
    /// A required field is absent.
    Missing(String),
    /// This field's value did not decode.
    Value(String),
    /// Anything else.
    Other,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("body field error")
    }
}

impl std::error::Error for FieldError {}

impl serde::de::Error for FieldError {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        FieldError::Other
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        FieldError::Unknown(field.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        FieldError::Missing(field.to_string())
    }
}

impl<'de> serde::Deserializer<'de> for FieldMap {
    type Error = FieldError;

    fn deserialize_any<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        visitor.visit_map(FieldAccess {
            fields: self.map.into_iter(),
            current: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// Walks the fields, keeping the one being decoded so a value's failure
/// can name it.
struct FieldAccess {
    /// Fields not yet handed out.
    fields: serde_json::map::IntoIter,
    /// The field whose key was handed out last, with its value.
    current: Option<(String, serde_json::Value)>,
}

impl<'de> serde::de::MapAccess<'de> for FieldAccess {
    type Error = FieldError;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, FieldError> {
        use serde::de::IntoDeserializer;
        let Some((key, value)) = self.fields.next() else {
            return Ok(None);
        };
        let decoded = seed.deserialize(key.clone().into_deserializer())?;
        self.current = Some((key, value));
        Ok(Some(decoded))
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, FieldError> {
        let Some((key, value)) = self.current.take() else {
            return Err(FieldError::Other);
        };
        seed.deserialize(value).map_err(|_| FieldError::Value(key))
    }
}

/// Decodes `application/x-www-form-urlencoded` pairs (a form body or a
/// query string), or `None` when the decoded bytes are not UTF-8: such
/// input is refused, not guessed at. `form_urlencoded` itself would put
/// U+FFFD in place of the bad bytes, so the whole input is first decoded
/// strictly; names and values are split at ASCII bytes (`&`, `=`), which
/// never fall inside a character, so the whole is UTF-8 exactly when
/// every name and value is.
pub fn form_pairs(input: &[u8]) -> Option<Vec<(String, String)>> {
    percent_encoding::percent_decode(input).decode_utf8().ok()?;
    Some(form_urlencoded::parse(input).into_owned().collect())
}

/// A JSON response. Every API response is `no-store`: most carry a token
/// or personal data, and none is worth caching.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response<Bytes> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Bytes::from(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `{"error": message}`.
pub fn error(status: StatusCode, message: &str) -> Response<Bytes> {
    json(status, &serde_json::json!({ "error": message }))
}

/// An empty response (204).
pub fn no_content() -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Adds `Retry-After` in whole seconds.
pub fn retry_after(mut response: Response<Bytes>, seconds: u64) -> Response<Bytes> {
    if let Ok(v) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert(RETRY_AFTER, v);
    }
    response
}

/// What a refusal needs to know of the request it answers, taken before
/// the handler has the request.
pub struct Asked {
    /// Whether the request presented a credential (a header, or a `token`
    /// query parameter), which decides the challenge's words.
    presented: bool,
    /// The request id, for the log line of a failure that is ours.
    request_id: RequestId,
}

impl Asked {
    /// What a refusal needs, made up (unit tests of the mapping).
    #[cfg(test)]
    pub(crate) fn made_up(presented: bool) -> Asked {
        Asked {
            presented,
            request_id: RequestId::next(),
        }
    }

    pub fn of(req: &Req) -> Asked {
        Asked {
            presented: req.headers.contains_key(http::header::AUTHORIZATION)
                || req.query("token").is_some(),
            request_id: req.ctx.request_id,
        }
    }
}

/// A domain error said in a document's `words`, with what every document
/// adds the same way: `Retry-After` on a refusal that passes with time
/// (a lock, a rate limit, a full pool), the RFC 6750 challenge on a 401
/// for a missing or refused credential, and a log line, with the request
/// id, for a failure that is ours (whose words never say its cause).
pub fn refusal(asked: &Asked, e: &Error, words: Response<Bytes>) -> Response<Bytes> {
    if matches!(e, Error::Store(_) | Error::Internal(_)) {
        tracing::error!(request_id = %asked.request_id, error = %e, "request failed");
    }
    let response = match e.retry_after() {
        Some(seconds) => retry_after(words, seconds),
        None => words,
    };
    if matches!(e, Error::Unauthenticated) {
        challenge(response, asked)
    } else {
        response
    }
}

/// Adds the RFC 6750 challenge to a 401: `error="invalid_token"` when the
/// request presented a credential that was refused, the bare challenge when
/// it presented none (RFC 6750 section 3.1).
fn challenge(mut response: Response<Bytes>, asked: &Asked) -> Response<Bytes> {
    let value = if asked.presented {
        r#"Bearer realm="latchkey", error="invalid_token""#
    } else {
        r#"Bearer realm="latchkey""#
    };
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(value));
    response
}

/// The principal behind the request's credential (see
/// [`Req::credential`]), when it presents one, through the one domain
/// function; a malformed `Authorization` header or a refused credential
/// is [`Error::Unauthenticated`] or what the domain says. The dispatcher
/// calls this once per request, for the routes that need it.
pub fn principal(
    app: &super::App,
    req: &Req,
    query_tokens: bool,
) -> Result<Option<Principal>, Error> {
    match req.credential(query_tokens) {
        Ok(Some(credential)) => {
            let mut principal = app
                .core
                .authenticate(credential.token(), req.ctx.client_ip)?;
            // The domain decides what a credential from the query string
            // may not do.
            principal.from_query = matches!(credential, Credential::Query(_));
            Ok(Some(principal))
        }
        Ok(None) => Ok(None),
        Err(MalformedAuthorization) => Err(Error::Unauthenticated),
    }
}

/// A JSON number of seconds as the domain takes it: a whole number that
/// fits as itself; anything larger (or fractional and positive) as
/// `u64::MAX`, anything below one as 0. The domain refuses both ends with
/// its own words, so a huge value is a 422, never a wrapped date.
pub fn seconds(n: &serde_json::Number) -> u64 {
    match n.as_u64() {
        Some(v) => v,
        None if n.as_f64().is_some_and(|f| f >= 1.0) => u64::MAX,
        None => 0,
    }
}

/// The answer to a failure that is ours, in every document: a body that
/// says nothing about the cause ([`refusal`] logs it).
pub fn internal_error() -> Response<Bytes> {
    self::error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
}

/// The 404 words of an identity provider that is not configured, which
/// the documents that sign in through one share.
pub fn provider_disabled(provider: Provider) -> String {
    format!("{} sign-in is not enabled", provider.title())
}

/// The status and words for an identity provider that could not be asked
/// properly: 504 when it was too slow, 503 when it could not be reached,
/// 502 when it answered with something unusable.
pub fn provider_failure(e: &crate::domain::external::FetchError) -> (StatusCode, &'static str) {
    use crate::domain::external::FetchError;
    match e {
        FetchError::Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "The identity provider did not answer in time",
        ),
        FetchError::Unreachable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The identity provider could not be reached",
        ),
        FetchError::BadAnswer(_) => (
            StatusCode::BAD_GATEWAY,
            "The identity provider gave an answer that cannot be used",
        ),
    }
}

/// The words of a full hashing pool, which every document but two
/// shares ([`refusal`] adds `Retry-After`).
pub fn busy() -> Response<Bytes> {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Server busy, try again shortly",
    )
}
