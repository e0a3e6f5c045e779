//! OCPP-J framing (OCPP 1.6 JSON §4): `[2, id, action, payload]` (CALL),
//! `[3, id, payload]` (CALLRESULT), `[4, id, code, description, details]` (CALLERROR).

use serde_json::{Value, json};

/// A CALLERROR code (OCPP-J §4.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The action is not known.
    NotImplemented,
    /// The action is known but not supported.
    NotSupported,
    /// Something went wrong while handling a valid request.
    InternalError,
    /// The payload is incomplete.
    ProtocolError,
    /// A field of the payload has a bad type or value.
    TypeConstraintViolation,
    /// The payload is not valid by the action's schema.
    FormationViolation,
    /// A field's value breaks a constraint.
    PropertyConstraintViolation,
    /// Any other error.
    GenericError,
}

impl ErrorCode {
    /// The code as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotImplemented => "NotImplemented",
            ErrorCode::NotSupported => "NotSupported",
            ErrorCode::InternalError => "InternalError",
            ErrorCode::ProtocolError => "ProtocolError",
            ErrorCode::TypeConstraintViolation => "TypeConstraintViolation",
            ErrorCode::FormationViolation => "FormationViolation",
            ErrorCode::PropertyConstraintViolation => "PropertyConstraintViolation",
            ErrorCode::GenericError => "GenericError",
        }
    }
}

/// An error answer to a CALL: the code and a description for the other side's log.
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    /// Code.
    pub code: ErrorCode,
    /// Why, in words.
    pub description: String,
}

impl CallError {
    /// A new error.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        CallError {
            code,
            description: description.into(),
        }
    }
}

/// One received frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A request from the other side.
    Call {
        /// Message id, echoed in the answer.
        id: String,
        /// Action name.
        action: String,
        /// Payload (an object).
        payload: Value,
    },
    /// The answer to one of our requests.
    Result {
        /// Message id of our request.
        id: String,
        /// Payload.
        payload: Value,
    },
    /// An error answer to one of our requests.
    Error {
        /// Message id of our request.
        id: String,
        /// Code as sent.
        code: String,
        /// Description as sent.
        description: String,
    },
}

/// A frame we cannot read: the id when one could be found (to answer with a CALLERROR), and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadFrame {
    /// The message id, when the frame had a readable one.
    pub id: Option<String>,
    /// What is wrong.
    pub error: CallError,
}

/// Longest description we send (the other side may log it).
const DESCRIPTION_CHARS: usize = 200;

fn clip(s: &str) -> String {
    match s.char_indices().nth(DESCRIPTION_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Parse one text message.
pub fn parse(text: &str) -> Result<Frame, BadFrame> {
    let bad = |id: Option<String>, code, d: String| BadFrame {
        id,
        error: CallError::new(code, clip(&d)),
    };
    let v: Value = serde_json::from_str(text).map_err(|e| {
        bad(
            None,
            ErrorCode::ProtocolError,
            format!("not a JSON array: {e}"),
        )
    })?;
    let Value::Array(a) = v else {
        return Err(bad(
            None,
            ErrorCode::ProtocolError,
            "an OCPP-J message is a JSON array".into(),
        ));
    };
    let id = match a.get(1) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 36 => Some(s.clone()),
        _ => None,
    };
    let Some(id_s) = id.clone() else {
        return Err(bad(
            None,
            ErrorCode::ProtocolError,
            "the message id (element 2) must be a string of 1 to 36 characters".into(),
        ));
    };
    match a.first().and_then(Value::as_u64) {
        Some(2) => {
            let (Some(Value::String(action)), Some(payload), 4) = (a.get(2), a.get(3), a.len())
            else {
                return Err(bad(
                    id,
                    ErrorCode::ProtocolError,
                    "a CALL is [2, id, action, payload]".into(),
                ));
            };
            if !payload.is_object() {
                return Err(bad(
                    id,
                    ErrorCode::FormationViolation,
                    format!("the payload of {action} must be a JSON object"),
                ));
            }
            Ok(Frame::Call {
                id: id_s,
                action: action.clone(),
                payload: payload.clone(),
            })
        }
        Some(3) if a.len() == 3 => Ok(Frame::Result {
            id: id_s,
            payload: a[2].clone(),
        }),
        Some(4) if a.len() >= 4 => Ok(Frame::Error {
            id: id_s,
            code: a[2].as_str().unwrap_or("").to_string(),
            description: a[3].as_str().unwrap_or("").to_string(),
        }),
        _ => Err(bad(
            id,
            ErrorCode::ProtocolError,
            "the message type (element 1) must be 2 (CALL), 3 (CALLRESULT) or 4 (CALLERROR) with the matching number of elements".into(),
        )),
    }
}

/// `[2, id, action, payload]`.
pub fn call(id: &str, action: &str, payload: &Value) -> String {
    json!([2, id, action, payload]).to_string()
}

/// `[3, id, payload]`.
pub fn result(id: &str, payload: &Value) -> String {
    json!([3, id, payload]).to_string()
}

/// `[4, id, code, description, {}]`.
pub fn error(id: &str, e: &CallError) -> String {
    json!([4, id, e.code.as_str(), clip(&e.description), {}]).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(
            parse(r#"[2,"a","Reset",{"type":"Soft"}]"#).unwrap(),
            Frame::Call {
                id: "a".into(),
                action: "Reset".into(),
                payload: json!({"type": "Soft"})
            }
        );
        assert!(matches!(
            parse(r#"[3,"b",{"status":"Accepted"}]"#),
            Ok(Frame::Result { .. })
        ));
        assert!(matches!(
            parse(r#"[4,"c","NotImplemented","no",{}]"#),
            Ok(Frame::Error { .. })
        ));
        for (text, id, code) in [
            ("garbage", None, ErrorCode::ProtocolError),
            ("{}", None, ErrorCode::ProtocolError),
            ("[2]", None, ErrorCode::ProtocolError),
            (r#"[2,"x","Reset"]"#, Some("x"), ErrorCode::ProtocolError),
            (
                r#"[2,"x","Reset",5]"#,
                Some("x"),
                ErrorCode::FormationViolation,
            ),
            (r#"[9,"x","Reset",{}]"#, Some("x"), ErrorCode::ProtocolError),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!((e.id.as_deref(), e.error.code), (id, code), "{text}");
        }
        let long = format!(r#"[2,"x",{},{{}}]"#, "1".repeat(10_000));
        let e = parse(&long).unwrap_err();
        assert!(error("x", &e.error).len() < 400);
    }
}
