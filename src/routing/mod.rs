//! Routing: the regional handover table, which says over which channel(s) a record travels from one
//! care provider to another.
//!
//! The table is data (`mappings/routes.toml`, embedded at build time): who hands over ([`Role`]), to
//! whom, in which situation ([`Context`]), and the [`Channel`]s the gateway renders for that. A
//! deployment can bring its own file ([`RouteTable::from_toml`], [`RouteTable::from_file`]) to add rows
//! without code. Every file is checked when it is loaded, so a typo in a role or channel is an error
//! naming the row and field, never a route that silently does not match.
//!
//! A combination the table does not list is refused with [`NoRoute`], whose message names the table:
//! the regional agreement is the authority, not the gateway.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::Deserialize;

/// The embedded regional table.
const ROUTES_TOML: &str = include_str!("../../mappings/routes.toml");
/// How messages name the embedded file.
const EMBEDDED_SOURCE: &str = "mappings/routes.toml";

/// Why a kebab-case keyword was refused; lists what is allowed so the caller can correct it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?}; expected one of: {}", allowed.join(", "))]
pub struct KeywordError {
    pub what: &'static str,
    pub given: String,
    pub allowed: Vec<&'static str>,
}

/// Declares a closed set of kebab-case keywords (roles, contexts, channels) with parsing, display and
/// serde as the keyword, so the CLI, the HTTP API and the TOML all spell them the same way.
macro_rules! keyword_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $key:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The kebab-case keyword.
            pub fn key(self) -> &'static str {
                match self { $($name::$variant => $key),+ }
            }
        }

        impl FromStr for $name {
            type Err = KeywordError;
            fn from_str(s: &str) -> Result<Self, KeywordError> {
                Self::ALL.iter().copied().find(|v| v.key() == s).ok_or_else(|| KeywordError {
                    what: $what,
                    given: s.to_owned(),
                    allowed: Self::ALL.iter().map(|v| v.key()).collect(),
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.key())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.key())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

keyword_enum! {
    /// The role of a care provider in the handover table.
    Role, "role" {
        MedischSpecialist = "medisch-specialist",
        Huisarts = "huisarts",
        SpecialistOuderengeneeskunde = "specialist-ouderengeneeskunde",
        Wijkverpleging = "wijkverpleging",
    }
}

keyword_enum! {
    /// The situation in which a record is handed over.
    Context, "context" {
        Discharge = "discharge",
        Referral = "referral",
        NursingHomeAdmission = "nursing-home-admission",
        FirstLineConsult = "first-line-consult",
        Regular = "regular",
    }
}

keyword_enum! {
    /// An output channel the gateway renders and delivers.
    Channel, "channel" {
        Edifact = "edifact",
        Post = "post",
        Zorgdomein = "zorgdomein",
        Mdo = "mdo",
        Dossier = "dossier",
        SecureMail = "secure-mail",
        Fhir = "fhir",
    }
}

/// Contexts that share the same channels within one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextGroup {
    pub contexts: Vec<Context>,
    pub channels: Vec<Channel>,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The row number of the regional table.
    pub row: u32,
    pub sender: Role,
    pub recipient: Role,
    /// The route as the regional table words it (Dutch).
    pub as_written: String,
    /// The contexts the row accepts, grouped by the channels they resolve to, in file order.
    pub groups: Vec<ContextGroup>,
}

impl Route {
    /// The channels this row prescribes in `context`, if it accepts that context.
    pub fn channels_in(&self, context: Context) -> Option<&[Channel]> {
        self.groups.iter().find(|g| g.contexts.contains(&context)).map(|g| g.channels.as_slice())
    }

    /// Every context the row accepts.
    pub fn contexts(&self) -> impl Iterator<Item = Context> + '_ {
        self.groups.iter().flat_map(|g| g.contexts.iter().copied())
    }
}

/// The handover table: rows plus the channels offered on every row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    name: String,
    source: Option<String>,
    also_offer: Vec<Channel>,
    rows: Vec<Route>,
}

/// A route table file that cannot be used, with the place of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteTableError {
    #[error("{file}: cannot read: {message}")]
    Read { file: String, message: String },
    #[error("{file}: not a valid route table: {message}")]
    Toml { file: String, message: String },
    #[error("{file}: {place}, field `{field}`: {message}")]
    Field { file: String, place: String, field: String, message: String },
}

/// The combination asked for is not in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoRoute {
    /// The table as messages name it, e.g. "the regional handover table (mappings/routes.toml)".
    pub table: String,
    pub sender: Option<Role>,
    pub recipient: Option<Role>,
    pub context: Option<Context>,
    /// The contexts the table does route this sender and recipient in, to point at the right one.
    pub routed_contexts: Vec<Context>,
}

impl fmt::Display for NoRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_any = |v: Option<String>, any: &str| v.unwrap_or_else(|| any.to_owned());
        write!(
            f,
            "{} has no route from {} to {} in {}",
            self.table,
            or_any(self.sender.map(|r| r.to_string()), "any sender"),
            or_any(self.recipient.map(|r| r.to_string()), "any recipient"),
            or_any(self.context.map(|c| format!("context {c}")), "any context"),
        )?;
        if !self.routed_contexts.is_empty() {
            let list: Vec<&str> = self.routed_contexts.iter().map(|c| c.key()).collect();
            write!(f, "; it routes this sender and recipient only in context {}", list.join(" or "))?;
        }
        Ok(())
    }
}

impl std::error::Error for NoRoute {}

/// The file as written; strings stay raw so that errors can name the row and field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    name: String,
    #[serde(default)]
    also_offer: Vec<String>,
    #[serde(default)]
    row: Vec<RawRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    row: u32,
    sender: String,
    recipient: String,
    #[serde(default)]
    as_written: String,
    contexts: Option<Vec<String>>,
    channels: Option<Vec<String>>,
    by_context: Option<BTreeMap<String, Vec<String>>>,
}

impl RouteTable {
    /// The regional table embedded from `mappings/routes.toml`.
    pub fn load() -> RouteTable {
        // The embedded file is part of the build and checked by the tests; it cannot depend on input.
        RouteTable::parse(ROUTES_TOML, Some(EMBEDDED_SOURCE.to_owned()))
            .unwrap_or_else(|e| panic!("the embedded route table is invalid: {e}"))
    }

    /// A deployment's own table, given as TOML text in the format of `mappings/routes.toml`.
    pub fn from_toml(text: &str) -> Result<RouteTable, RouteTableError> {
        RouteTable::parse(text, None)
    }

    /// A deployment's own table file; messages name the file.
    pub fn from_file(path: &Path) -> Result<RouteTable, RouteTableError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| RouteTableError::Read { file: file.clone(), message: e.to_string() })?;
        RouteTable::parse(&text, Some(file))
    }

    /// The table as messages name it: its name, and the file it came from when known.
    pub fn describe(&self) -> String {
        match &self.source {
            Some(src) => format!("{} ({src})", self.name),
            None => self.name.clone(),
        }
    }

    pub fn rows(&self) -> &[Route] {
        &self.rows
    }

    /// The channels offered on every row to a recipient whose system takes them (`fhir`).
    pub fn also_offer(&self) -> &[Channel] {
        &self.also_offer
    }

    /// The row that handles this combination, with the channels it prescribes.
    pub fn lookup(&self, sender: Role, recipient: Role, context: Context) -> Result<(&Route, &[Channel]), NoRoute> {
        self.rows
            .iter()
            .filter(|r| r.sender == sender && r.recipient == recipient)
            .find_map(|r| r.channels_in(context).map(|ch| (r, ch)))
            .ok_or_else(|| self.no_route(Some(sender), Some(recipient), Some(context)))
    }

    /// The channels the table prescribes for this combination.
    pub fn resolve(&self, sender: Role, recipient: Role, context: Context) -> Result<Vec<Channel>, NoRoute> {
        self.lookup(sender, recipient, context).map(|(_, ch)| ch.to_vec())
    }

    /// The prescribed channels plus those of `also_offer` that the recipient accepts (has an endpoint
    /// for), in that order and without repeats.
    pub fn resolve_for_recipient(
        &self,
        sender: Role,
        recipient: Role,
        context: Context,
        accepted: &[Channel],
    ) -> Result<Vec<Channel>, NoRoute> {
        let mut channels = self.resolve(sender, recipient, context)?;
        for ch in &self.also_offer {
            if accepted.contains(ch) && !channels.contains(ch) {
                channels.push(*ch);
            }
        }
        Ok(channels)
    }

    fn no_route(&self, sender: Option<Role>, recipient: Option<Role>, context: Option<Context>) -> NoRoute {
        let routed_contexts = match (sender, recipient, context) {
            (Some(s), Some(r), Some(_)) => {
                self.rows.iter().filter(|row| row.sender == s && row.recipient == r).flat_map(Route::contexts).collect()
            }
            _ => Vec::new(),
        };
        NoRoute { table: self.describe(), sender, recipient, context, routed_contexts }
    }

    fn parse(text: &str, source: Option<String>) -> Result<RouteTable, RouteTableError> {
        let file = source.clone().unwrap_or_else(|| "route table".to_owned());
        let raw: RawTable =
            toml::from_str(text).map_err(|e| RouteTableError::Toml { file: file.clone(), message: e.to_string() })?;
        let field_err = |place: String, field: &str, message: String| RouteTableError::Field {
            file: file.clone(),
            place,
            field: field.to_owned(),
            message,
        };

        let also_offer =
            parse_list::<Channel>(&raw.also_offer).map_err(|m| field_err("table".into(), "also_offer", m))?;
        let mut rows: Vec<Route> = Vec::with_capacity(raw.row.len());
        for r in raw.row {
            let place = format!("row {}", r.row);
            if rows.iter().any(|prev| prev.row == r.row) {
                return Err(field_err(place, "row", "this row number is used twice; number each row once".into()));
            }
            let sender = r.sender.parse::<Role>().map_err(|e| field_err(place.clone(), "sender", e.to_string()))?;
            let recipient =
                r.recipient.parse::<Role>().map_err(|e| field_err(place.clone(), "recipient", e.to_string()))?;
            let groups = match (r.contexts, r.channels, r.by_context) {
                (Some(contexts), Some(channels), None) => {
                    let contexts =
                        parse_list::<Context>(&contexts).map_err(|m| field_err(place.clone(), "contexts", m))?;
                    let channels =
                        parse_list::<Channel>(&channels).map_err(|m| field_err(place.clone(), "channels", m))?;
                    vec![ContextGroup { contexts, channels }]
                }
                (None, None, Some(by_context)) => {
                    if by_context.is_empty() {
                        return Err(field_err(place, "by_context", "lists no context".into()));
                    }
                    let mut groups = Vec::new();
                    for (ctx, channels) in &by_context {
                        let field = format!("by_context.{ctx}");
                        let context =
                            ctx.parse::<Context>().map_err(|e| field_err(place.clone(), &field, e.to_string()))?;
                        let channels =
                            parse_list::<Channel>(channels).map_err(|m| field_err(place.clone(), &field, m))?;
                        groups.push(ContextGroup { contexts: vec![context], channels });
                    }
                    // A TOML table has no order; show the contexts in their declared order.
                    groups.sort_by_key(|g| g.contexts[0]);
                    groups
                }
                (_, _, Some(_)) => {
                    return Err(field_err(
                        place,
                        "by_context",
                        "give either `contexts` with `channels`, or `[row.by_context]`, not both".into(),
                    ))
                }
                (None, _, None) => {
                    return Err(field_err(place, "contexts", "missing; say in which contexts this row applies".into()))
                }
                (Some(_), None, None) => {
                    return Err(field_err(
                        place,
                        "channels",
                        "missing; say which channel(s) this row resolves to".into(),
                    ))
                }
            };
            let route = Route { row: r.row, sender, recipient, as_written: r.as_written, groups };
            // One combination, one row: otherwise the answer would depend on the order of the file.
            for prev in rows.iter().filter(|p| p.sender == sender && p.recipient == recipient) {
                if let Some(c) = route.contexts().find(|c| prev.channels_in(*c).is_some()) {
                    return Err(field_err(
                        place,
                        "contexts",
                        format!("{sender} to {recipient} in context {c} is already routed by row {}", prev.row),
                    ));
                }
            }
            rows.push(route);
        }
        Ok(RouteTable { name: raw.name, source, also_offer, rows })
    }
}

/// Parses a non-empty list of keywords without repeats; the error is the message for the field.
fn parse_list<T>(raw: &[String]) -> Result<Vec<T>, String>
where
    T: FromStr<Err = KeywordError> + PartialEq + fmt::Display,
{
    let mut out = Vec::with_capacity(raw.len());
    for s in raw {
        let v = s.parse::<T>().map_err(|e| e.to_string())?;
        if out.contains(&v) {
            return Err(format!("{v} is listed twice"));
        }
        out.push(v);
    }
    Ok(out)
}

/// One line of a printed table: a row (or part of it) and the contexts shown on that line.
struct Line<'a> {
    route: &'a Route,
    group: &'a ContextGroup,
    first_of_row: bool,
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn render_lines(table: &RouteTable, lines: &[Line<'_>]) -> String {
    const HEAD: [&str; 5] = ["row", "sender", "recipient", "context", "channels"];
    let cells: Vec<[String; 5]> = lines
        .iter()
        .map(|l| {
            let (row, sender, recipient) = if l.first_of_row {
                (l.route.row.to_string(), l.route.sender.to_string(), l.route.recipient.to_string())
            } else {
                Default::default()
            };
            [row, sender, recipient, join(&l.group.contexts), join(&l.group.channels)]
        })
        .collect();
    let mut width = HEAD.map(str::len);
    for c in &cells {
        for (w, cell) in width.iter_mut().zip(c) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = format!("{}\n\n", capitalise(&table.describe()));
    let mut push_line = |cols: [&str; 5]| {
        let line: Vec<String> = cols.iter().zip(width).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    };
    push_line(HEAD);
    push_line(width.map(|w| "-".repeat(w)).each_ref().map(String::as_str));
    for c in &cells {
        push_line(c.each_ref().map(String::as_str));
    }
    if !table.also_offer.is_empty() {
        out.push_str(&format!(
            "\nEvery row also offers {} to a recipient whose system takes it.\n",
            join(&table.also_offer)
        ));
    }
    // The regional wording, for people who know the table by its text.
    let mut written: Vec<&Route> =
        lines.iter().filter(|l| l.first_of_row && !l.route.as_written.is_empty()).map(|l| l.route).collect();
    written.dedup_by_key(|r| r.row);
    if !written.is_empty() {
        out.push_str("\nAs written in the table:\n");
        for r in written {
            out.push_str(&format!("{:<4} {}\n", r.row, r.as_written));
        }
    }
    out
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The whole table as a readable text table (`acp-gateway routes`).
pub fn render_table(table: &RouteTable) -> String {
    let lines: Vec<Line<'_>> = table
        .rows
        .iter()
        .flat_map(|r| r.groups.iter().enumerate().map(move |(i, g)| Line { route: r, group: g, first_of_row: i == 0 }))
        .collect();
    render_lines(table, &lines)
}

/// The route(s) matching the given sender, recipient and context (`acp-gateway routes --sender ...`).
/// With all three given, the one route and its channels; with some left out, the matching part of the
/// table. `Err` when nothing matches (the CLI exits 1 with the message).
pub fn render_routes(
    table: &RouteTable,
    sender: Option<Role>,
    recipient: Option<Role>,
    context: Option<Context>,
) -> Result<String, NoRoute> {
    if let (Some(s), Some(r), Some(c)) = (sender, recipient, context) {
        let (route, channels) = table.lookup(s, r, c)?;
        let mut out = format!("From {s} to {r} in context {c}: {}\n", join(channels));
        if !table.also_offer.is_empty() {
            out.push_str(&format!("Also offered to a recipient whose system takes it: {}\n", join(&table.also_offer)));
        }
        out.push_str(&format!("Row {} of {}", route.row, table.describe()));
        if !route.as_written.is_empty() {
            out.push_str(&format!(", as written: {}", route.as_written));
        }
        out.push('\n');
        return Ok(out);
    }
    let mut lines = Vec::new();
    for route in &table.rows {
        if sender.is_some_and(|s| s != route.sender) || recipient.is_some_and(|r| r != route.recipient) {
            continue;
        }
        let mut first = true;
        for group in &route.groups {
            if context.is_some_and(|c| !group.contexts.contains(&c)) {
                continue;
            }
            lines.push(Line { route, group, first_of_row: first });
            first = false;
        }
    }
    if lines.is_empty() {
        return Err(table.no_route(sender, recipient, context));
    }
    Ok(render_lines(table, &lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_has_the_seven_rows() {
        let t = RouteTable::load();
        let rows: Vec<u32> = t.rows().iter().map(|r| r.row).collect();
        assert_eq!(rows, [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(t.also_offer(), [Channel::Fhir]);
    }

    #[test]
    fn keywords_parse_and_refuse_with_the_allowed_list() {
        assert_eq!("specialist-ouderengeneeskunde".parse::<Role>(), Ok(Role::SpecialistOuderengeneeskunde));
        let e = "arts".parse::<Role>().unwrap_err().to_string();
        assert!(e.contains("unknown role \"arts\"") && e.contains("huisarts"), "{e}");
        for c in Channel::ALL {
            assert_eq!(c.key().parse::<Channel>(), Ok(*c));
        }
    }

    #[test]
    fn partial_filter_shows_matching_rows_only() {
        let t = RouteTable::load();
        let out = render_routes(&t, Some(Role::Huisarts), None, None).unwrap();
        assert!(out.contains("zorgdomein") && out.contains("mdo") && out.contains("dossier"), "{out}");
        assert!(!out.contains("edifact"), "{out}");
        let none = render_routes(&t, Some(Role::Wijkverpleging), None, None).unwrap_err();
        assert!(none.to_string().contains("from wijkverpleging to any recipient in any context"), "{none}");
    }
}
