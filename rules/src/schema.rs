//! What a record has: the caller's field declarations, and the trait evaluation reads records through.
//!
//! The rule engine never sees the caller's event type. The caller declares, once, every field a rule may
//! name (`kind`, `dest.host`, `score.entropy`, ...) with its type, and gets back a [`FieldId`] per field; at
//! evaluation it answers [`Record`] calls by id. Prefixes such as `attrs.` declare open-ended fields whose
//! names and types are only known per record ([`Record::dynamic`]).

use rustc_hash::FxHashMap;

/// The type of a declared field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// A string (`kind`, `tool`, `dest.host`, `path`, ...).
    Str,
    /// A number (`tokens.input`, `bytes_out`, `score.entropy`, ...).
    Num,
    /// A boolean (`privileged`).
    Bool,
}

impl FieldType {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Str => "string",
            FieldType::Num => "number",
            FieldType::Bool => "bool",
        }
    }
}

/// A declared field: an index into the schema's declarations, in declaration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId(u32);

impl FieldId {
    /// The declaration index (0 for the first field declared), for caller-side lookup tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A value of a dynamic (prefix-declared) field, typed per record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dynamic<'a> {
    /// A string value.
    Str(&'a str),
    /// A numeric value.
    Num(f64),
    /// A boolean value.
    Bool(bool),
}

/// What evaluation reads from one record.
///
/// A field the record lacks answers `None`: every comparison, `in` test and string method on a missing
/// field is false, and `has(field)` tests presence. Implementations should not allocate.
pub trait Record {
    /// The string field `f`, if present.
    fn str(&self, f: FieldId) -> Option<&str>;
    /// The numeric field `f`, if present.
    fn num(&self, f: FieldId) -> Option<f64>;
    /// The boolean field `f`, if present.
    fn boolean(&self, f: FieldId) -> Option<bool>;
    /// The dynamic field `prefix` + `name` (e.g. `("attrs.", "region")`), if present. `prefix` is passed
    /// exactly as declared with [`Schema::dynamic_prefix`], with its trailing dot.
    fn dynamic(&self, prefix: &str, name: &str) -> Option<Dynamic<'_>>;
    /// Event time in milliseconds since the Unix epoch; windows of stateful rules run on it.
    fn ts_ms(&self) -> i64;
}

/// The fields rules may name, declared by the caller.
///
/// Names are dotted paths (`dest.host`, `tokens.input`). Declaring a name twice returns the first id and
/// keeps the first type.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    fields: Vec<(String, FieldType)>,
    by_name: FxHashMap<String, FieldId>,
    prefixes: Vec<String>,
}

/// What a name resolves to in a schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resolved<'a> {
    /// A declared field.
    Field(FieldId, FieldType),
    /// A field under a dynamic prefix: (prefix index, rest of the name).
    Dynamic(u16, &'a str),
}

impl Schema {
    /// An empty schema.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares field `name` of type `ty` and returns its id.
    pub fn field(&mut self, name: &str, ty: FieldType) -> FieldId {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let id = FieldId(self.fields.len() as u32);
        self.fields.push((name.to_string(), ty));
        self.by_name.insert(name.to_string(), id);
        id
    }

    /// Declares a prefix (e.g. `attrs.`) under which any name is a dynamic field, read with
    /// [`Record::dynamic`]. A missing trailing dot is added.
    pub fn dynamic_prefix(&mut self, prefix: &str) {
        let mut p = prefix.to_string();
        if !p.ends_with('.') {
            p.push('.');
        }
        if !self.prefixes.contains(&p) && self.prefixes.len() < u16::MAX as usize {
            self.prefixes.push(p);
        }
    }

    /// The id and type of declared field `name`.
    pub fn lookup(&self, name: &str) -> Option<(FieldId, FieldType)> {
        self.by_name.get(name).map(|&id| (id, self.fields[id.index()].1))
    }

    /// The name of field `id`.
    pub fn name(&self, id: FieldId) -> Option<&str> {
        self.fields.get(id.index()).map(|(n, _)| n.as_str())
    }

    /// The type of field `id`.
    pub fn field_type(&self, id: FieldId) -> Option<FieldType> {
        self.fields.get(id.index()).map(|(_, t)| *t)
    }

    /// Every declared field, in declaration order.
    pub fn fields(&self) -> impl Iterator<Item = (FieldId, &str, FieldType)> {
        self.fields.iter().enumerate().map(|(i, (n, t))| (FieldId(i as u32), n.as_str(), *t))
    }

    /// Every dynamic prefix, with its trailing dot.
    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }

    /// Number of declared fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether no field is declared.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub(crate) fn resolve<'n>(&self, name: &'n str) -> Option<Resolved<'n>> {
        if let Some((id, ty)) = self.lookup(name) {
            return Some(Resolved::Field(id, ty));
        }
        for (i, p) in self.prefixes.iter().enumerate() {
            if let Some(rest) = name.strip_prefix(p.as_str()) {
                if !rest.is_empty() {
                    return Some(Resolved::Dynamic(i as u16, rest));
                }
            }
        }
        None
    }

    pub(crate) fn prefix(&self, i: u16) -> &str {
        self.prefixes.get(i as usize).map(String::as_str).unwrap_or("")
    }

    /// The declared name closest to `name` (for "did you mean" hints).
    pub(crate) fn closest(&self, name: &str) -> Option<&str> {
        crate::util::closest(name, self.fields.iter().map(|(n, _)| n.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declares_and_resolves() {
        let mut s = Schema::new();
        let k = s.field("kind", FieldType::Str);
        let h = s.field("dest.host", FieldType::Str);
        assert_eq!(s.field("kind", FieldType::Num), k);
        assert_eq!(s.lookup("kind"), Some((k, FieldType::Str)));
        s.dynamic_prefix("attrs");
        assert_eq!(s.prefixes(), &["attrs.".to_string()]);
        assert_eq!(s.resolve("dest.host"), Some(Resolved::Field(h, FieldType::Str)));
        assert_eq!(s.resolve("attrs.region"), Some(Resolved::Dynamic(0, "region")));
        assert_eq!(s.resolve("attrs."), None);
        assert_eq!(s.resolve("dest.hots"), None);
        assert_eq!(s.closest("dest.hots"), Some("dest.host"));
        assert_eq!(s.name(h), Some("dest.host"));
        assert_eq!(s.len(), 2);
    }
}
