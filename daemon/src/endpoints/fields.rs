//! The grammar of endpoint descriptions, as Twisted's `_tokenize` and `_parse` read it.
//!
//! A description is fields separated by `:`. A field with an `=` is named (`port=80`);
//! one without is positional (`80`). The first field names the endpoint type. A backslash
//! makes the next character literal (`unix:/tmp/a\:b` is the path `/tmp/a:b`); after the
//! `=` of a named field only a `:` ends the value, so a value may contain `=`.
//!
//! Each endpoint type binds its fields to an ordered parameter list, as Python binds a
//! call's arguments: positional fields fill the parameters in order, named fields fill
//! theirs, and a parameter given twice, an unknown name or one positional field too many
//! is an error. Unlike Twisted (where a repeated name silently keeps the last value), a
//! name given twice is an error too, so nothing the user wrote is dropped.

use std::fmt;

use super::error::ParseProblem;

/// One description split into its type and its fields (Twisted's `_parse`), for endpoint
/// types and plugins to bind to their parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    kind: String,
    positional: Vec<String>,
    named: Vec<(String, String)>,
}

impl Fields {
    /// Split `description` into fields.
    ///
    /// # Errors
    ///
    /// [`ParseProblem::Empty`] for an empty description, [`ParseProblem::NoType`] when the
    /// first field is a named one, [`ParseProblem::TrailingBackslash`] when a backslash
    /// ends the description.
    pub fn split(description: &str) -> Result<Fields, ParseProblem> {
        if description.is_empty() {
            return Err(ParseProblem::Empty);
        }
        // Each field: its pieces (one for positional, two for named).
        let mut fields: Vec<Vec<String>> = Vec::new();
        let mut pieces: Vec<String> = Vec::new();
        let mut current = String::new();
        let mut chars = description.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(next) => current.push(next),
                    None => return Err(ParseProblem::TrailingBackslash),
                },
                ':' => {
                    pieces.push(std::mem::take(&mut current));
                    fields.push(std::mem::take(&mut pieces));
                }
                // After a name's `=`, only `:` is an operator (Twisted's `nextOps`).
                '=' if pieces.is_empty() => pieces.push(std::mem::take(&mut current)),
                c => current.push(c),
            }
        }
        pieces.push(current);
        fields.push(pieces);

        let mut iter = fields.into_iter();
        let kind = match iter.next() {
            Some(mut first) if first.len() == 1 => first.remove(0),
            _ => return Err(ParseProblem::NoType),
        };
        let mut out = Fields {
            kind,
            positional: Vec::new(),
            named: Vec::new(),
        };
        for mut field in iter {
            if field.len() == 1 {
                out.positional.push(field.remove(0));
            } else {
                let value = field.pop().unwrap_or_default();
                let name = field.pop().unwrap_or_default();
                out.named.push((name, value));
            }
        }
        Ok(out)
    }

    /// The endpoint type: the first field (`tcp` in `tcp:80`), as written.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The positional fields after the type, in order.
    pub fn positional(&self) -> &[String] {
        &self.positional
    }

    /// The named fields, in order.
    pub fn named(&self) -> &[(String, String)] {
        &self.named
    }

    /// Bind the fields to `params`, the endpoint type's parameters in positional order
    /// (as Python binds a call's arguments).
    ///
    /// # Errors
    ///
    /// [`ParseProblem::TooManyValues`], [`ParseProblem::UnknownField`] or
    /// [`ParseProblem::DuplicateField`].
    pub fn bind(&self, params: &[&'static str]) -> Result<Bound, ParseProblem> {
        let mut values: Vec<Option<String>> = vec![None; params.len()];
        for (i, value) in self.positional.iter().enumerate() {
            match values.get_mut(i) {
                Some(slot) => *slot = Some(value.clone()),
                None => {
                    return Err(ParseProblem::TooManyValues {
                        max: params.len(),
                        extra: value.clone(),
                    });
                }
            }
        }
        for (name, value) in &self.named {
            let Some(i) = params.iter().position(|p| p == name) else {
                return Err(ParseProblem::UnknownField {
                    field: name.clone(),
                    known: params.join(", "),
                });
            };
            if values[i].is_some() {
                return Err(ParseProblem::DuplicateField(name.clone()));
            }
            values[i] = Some(value.clone());
        }
        Ok(Bound {
            params: params.to_vec(),
            values,
        })
    }
}

/// Fields bound to an endpoint type's parameters by [`Fields::bind`].
#[derive(Debug, Clone)]
pub struct Bound {
    params: Vec<&'static str>,
    values: Vec<Option<String>>,
}

impl Bound {
    /// The value given for `param`, if any.
    pub fn get(&self, param: &str) -> Option<&str> {
        let i = self.params.iter().position(|p| *p == param)?;
        self.values[i].as_deref()
    }

    /// The value given for `param`.
    ///
    /// # Errors
    ///
    /// [`ParseProblem::Missing`] when it was not given.
    pub fn require(&self, param: &'static str) -> Result<&str, ParseProblem> {
        self.get(param).ok_or(ParseProblem::Missing(param))
    }

    /// The value given for `param`, parsed by `parse`, or `None` when not given.
    ///
    /// # Errors
    ///
    /// [`ParseProblem::Invalid`] naming `param`, its value and `expected` when `parse`
    /// fails.
    pub fn parse_with<T>(
        &self,
        param: &'static str,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ParseProblem> {
        match self.get(param) {
            None => Ok(None),
            Some(value) => parse(value).map(Some).ok_or_else(|| ParseProblem::Invalid {
                field: param.to_owned(),
                value: value.to_owned(),
                expected,
            }),
        }
    }
}

/// Writes `value` escaped for a description: `\`, `:` and `=` get a backslash.
pub(crate) struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if matches!(c, '\\' | ':' | '=') {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> (String, Vec<String>, Vec<(String, String)>) {
        let f = Fields::split(s).unwrap();
        (f.kind, f.positional, f.named)
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn twisted_parse_examples() {
        // Twisted's docstring example: _parse('a:b:d=1:c') == (['a', 'b', 'c'], {'d': '1'}).
        let (kind, pos, named) = split("a:b:d=1:c");
        assert_eq!(kind, "a");
        assert_eq!(pos, s(&["b", "c"]));
        assert_eq!(named, vec![("d".into(), "1".into())]);
    }

    #[test]
    fn backslash_escapes_the_next_character() {
        let (_, pos, named) = split(r"unix:/tmp/a\:b:mode=0\=6");
        assert_eq!(pos, s(&["/tmp/a:b"]));
        assert_eq!(named, vec![("mode".into(), "0=6".into())]);
        let (_, _, named) = split(r"tcp:interface=\:\:1");
        assert_eq!(named, vec![("interface".into(), "::1".into())]);
    }

    #[test]
    fn a_value_may_contain_equals() {
        let (_, _, named) = split("x:a=b=c");
        assert_eq!(named, vec![("a".into(), "b=c".into())]);
    }

    #[test]
    fn empty_fields_are_kept() {
        let (kind, pos, _) = split("tcp:");
        assert_eq!(kind, "tcp");
        assert_eq!(pos, s(&[""]));
        let (_, pos, named) = split("tcp::port=");
        assert_eq!(pos, s(&[""]));
        assert_eq!(named, vec![("port".into(), "".into())]);
    }

    #[test]
    fn errors() {
        assert_eq!(Fields::split(""), Err(ParseProblem::Empty));
        assert_eq!(Fields::split("port=80"), Err(ParseProblem::NoType));
        assert_eq!(
            Fields::split(r"tcp:80\"),
            Err(ParseProblem::TrailingBackslash)
        );
    }

    #[test]
    fn binding_like_python() {
        let f = Fields::split("tcp:interface=1.2.3.4:80").unwrap();
        let b = f.bind(&["port", "interface", "backlog"]).unwrap();
        assert_eq!(b.get("port"), Some("80"));
        assert_eq!(b.get("interface"), Some("1.2.3.4"));
        assert_eq!(b.get("backlog"), None);

        let f = Fields::split("tcp:port=80:80").unwrap();
        assert_eq!(
            f.bind(&["port"]).unwrap_err(),
            ParseProblem::DuplicateField("port".into())
        );
        let f = Fields::split("tcp:80:backlog=1:backlog=2").unwrap();
        assert_eq!(
            f.bind(&["port", "backlog"]).unwrap_err(),
            ParseProblem::DuplicateField("backlog".into())
        );
        let f = Fields::split("tcp:80:foo=1").unwrap();
        assert!(matches!(
            f.bind(&["port"]).unwrap_err(),
            ParseProblem::UnknownField { field, .. } if field == "foo"
        ));
        let f = Fields::split("tcp:80:x").unwrap();
        assert_eq!(
            f.bind(&["port"]).unwrap_err(),
            ParseProblem::TooManyValues {
                max: 1,
                extra: "x".into()
            }
        );
    }

    #[test]
    fn escaping_round_trips() {
        let raw = r"a:b=c\d";
        let written = format!("x:{}", Escaped(raw));
        let f = Fields::split(&written).unwrap();
        assert_eq!(f.positional, s(&[raw]));
    }
}
