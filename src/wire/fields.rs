//! Reading request fields the way legacy clients send them: names in any case
//! (`OrgID`, `orgid`), scalars in any of their spellings (`"1"` and `1`; `"True"`,
//! `"TRUE"` and `true`; `null` and `""` for "not given"). JSON and XML bodies both
//! arrive here as a `serde_json::Value` tree.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// An object of a request, with the name it is reported under in errors.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    name: &'a str,
    map: Option<&'a Map<String, Value>>,
}

static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();

impl<'a> Fields<'a> {
    /// `value` must be an object; null (or an empty string, as XML gives for an empty
    /// element) reads as an object without fields.
    pub fn new(name: &'a str, value: &'a Value) -> Result<Fields<'a>> {
        match value {
            Value::Object(m) => Ok(Fields { name, map: Some(m) }),
            Value::Null => Ok(Fields { name, map: None }),
            Value::String(s) if s.trim().is_empty() => Ok(Fields { name, map: None }),
            _ => Err(Error::invalid(format!("{name} must be an object."))),
        }
    }

    pub fn name(&self) -> &'a str {
        self.name
    }

    pub fn map(&self) -> &'a Map<String, Value> {
        self.map.unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }

    /// The value of `key`, matched without regard to case; null counts as absent.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        let map = self.map?;
        map.get(key)
            .or_else(|| {
                map.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })
            .filter(|v| !v.is_null())
    }

    /// A text field; numbers and booleans are taken as their text. Empty is absent.
    pub fn text(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(self.wrong(key, "a text value")),
        }
    }

    pub fn required_text(&self, key: &str) -> Result<String> {
        match self.text(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(self.missing(key)),
        }
    }

    /// A whole number given as a number or as text.
    pub fn int(&self, key: &str) -> Result<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Ok(Some(i)),
                (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                _ => Err(self.wrong(key, "a whole number")),
            },
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| self.wrong(key, "a whole number")),
            Some(_) => Err(self.wrong(key, "a whole number")),
        }
    }

    /// A boolean: true/false in any case, 1/0, yes/no, as a JSON boolean, number or text.
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        let parse = |s: &str| match s.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            _ => Err(self.wrong(key, "true or false")),
        };
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::Number(n)) => parse(&n.to_string()),
            Some(Value::String(s)) => parse(s),
            Some(_) => Err(self.wrong(key, "true or false")),
        }
    }

    /// A nested object, if present.
    pub fn object(&self, key: &str) -> Result<Option<Fields<'a>>> {
        match self.get(key) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(Fields {
                name: self.child_name(key),
                map: v.as_object(),
            })),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(_) => Err(self.wrong(key, "an object")),
        }
    }

    pub fn required_object(&self, key: &str) -> Result<Fields<'a>> {
        self.object(key)?.ok_or_else(|| self.missing(key))
    }

    /// The spelling of `key` as the request wrote it, for messages.
    fn child_name(&self, key: &str) -> &'a str {
        self.map()
            .keys()
            .find(|k| k.eq_ignore_ascii_case(key))
            .map(String::as_str)
            .unwrap_or(self.name)
    }

    fn missing(&self, key: &str) -> Error {
        Error::invalid(format!("{key} is required in {}.", self.name))
    }

    fn wrong(&self, key: &str, what: &str) -> Error {
        Error::invalid(format!("{key} in {} must be {what}.", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_match_in_any_case_and_scalars_in_any_spelling() {
        let v = json!({"OrgID": "1", "orgid2": 2, "IsSync": "TRUE", "flag": 0, "Name": 5, "Empty": "", "Nothing": null});
        let f = Fields::new("_ProxyDetails", &v).unwrap();
        assert_eq!(f.int("orgid").unwrap(), Some(1));
        assert_eq!(f.int("OrgID2").unwrap(), Some(2));
        assert_eq!(f.bool("issync").unwrap(), Some(true));
        assert_eq!(f.bool("FLAG").unwrap(), Some(false));
        assert_eq!(f.text("name").unwrap().as_deref(), Some("5"));
        assert_eq!(f.text("Empty").unwrap(), None);
        assert_eq!(f.int("Nothing").unwrap(), None);
        assert_eq!(f.text("absent").unwrap(), None);
    }

    #[test]
    fn wrong_types_and_missing_fields_say_which_field() {
        let v = json!({"UserID": "abc", "Obj": [1], "Flag": "maybe"});
        let f = Fields::new("objUserInformation", &v).unwrap();
        assert_eq!(
            f.int("UserID").unwrap_err().to_string(),
            "UserID in objUserInformation must be a whole number."
        );
        assert_eq!(
            f.object("obj").unwrap_err().to_string(),
            "obj in objUserInformation must be an object."
        );
        assert_eq!(
            f.bool("flag").unwrap_err().to_string(),
            "flag in objUserInformation must be true or false."
        );
        assert_eq!(
            f.required_text("DeviceId").unwrap_err().to_string(),
            "DeviceId is required in objUserInformation."
        );
        assert!(Fields::new("x", &json!(5)).is_err());
        assert_eq!(f.int("UserID ").unwrap(), None);
    }

    #[test]
    fn nested_objects_report_their_own_name() {
        let v = json!({"objuserinformation": {"UserID": []}});
        let f = Fields::new("objCommonParameters", &v).unwrap();
        let inner = f.required_object("objUserInformation").unwrap();
        assert_eq!(
            inner.int("UserID").unwrap_err().to_string(),
            "UserID in objuserinformation must be a whole number."
        );
    }
}
