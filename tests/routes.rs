//! The handover table as data (`mappings/routes.toml`, `routing`): the seven regional rows resolve as
//! `../shared/spec/handover-table.md` says, everything else is refused naming the table, and a
//! deployment's own file adds rows without code.

use acp_gateway::routing::{render_routes, render_table, Channel, Context, NoRoute, Role, RouteTable};

use Channel::*;
use Context::*;
use Role::*;

/// Every combination the regional table routes, with its channels (the spec, written out by hand).
fn expected() -> Vec<(Role, Role, Context, Vec<Channel>)> {
    vec![
        (MedischSpecialist, Huisarts, Discharge, vec![Edifact]),
        (MedischSpecialist, Huisarts, Regular, vec![Edifact]),
        (MedischSpecialist, SpecialistOuderengeneeskunde, Discharge, vec![Post]),
        (MedischSpecialist, SpecialistOuderengeneeskunde, Regular, vec![Post]),
        (Huisarts, MedischSpecialist, Referral, vec![Zorgdomein]),
        (Huisarts, Wijkverpleging, Regular, vec![Mdo]),
        (Huisarts, SpecialistOuderengeneeskunde, NursingHomeAdmission, vec![Dossier]),
        (Huisarts, SpecialistOuderengeneeskunde, FirstLineConsult, vec![Zorgdomein]),
        (SpecialistOuderengeneeskunde, MedischSpecialist, Referral, vec![Zorgdomein]),
        (SpecialistOuderengeneeskunde, Huisarts, Discharge, vec![SecureMail, Post]),
        (SpecialistOuderengeneeskunde, Huisarts, FirstLineConsult, vec![SecureMail, Post]),
        (SpecialistOuderengeneeskunde, Huisarts, Regular, vec![SecureMail, Post]),
    ]
}

#[test]
fn the_seven_rows_resolve_as_the_table_says() {
    let table = RouteTable::load();
    for (s, r, c, channels) in expected() {
        assert_eq!(table.resolve(s, r, c), Ok(channels), "{s} -> {r} in {c}");
    }
    let rows: Vec<(u32, Role, Role)> = table.rows().iter().map(|row| (row.row, row.sender, row.recipient)).collect();
    assert_eq!(
        rows,
        [
            (1, MedischSpecialist, Huisarts),
            (2, MedischSpecialist, SpecialistOuderengeneeskunde),
            (3, Huisarts, MedischSpecialist),
            (4, Huisarts, Wijkverpleging),
            (5, Huisarts, SpecialistOuderengeneeskunde),
            (6, SpecialistOuderengeneeskunde, MedischSpecialist),
            (7, SpecialistOuderengeneeskunde, Huisarts),
        ]
    );
}

#[test]
fn every_unlisted_combination_is_refused_naming_the_table() {
    let table = RouteTable::load();
    let listed = expected();
    let mut refused = 0;
    for &s in Role::ALL {
        for &r in Role::ALL {
            for &c in Context::ALL {
                if listed.iter().any(|(ls, lr, lc, _)| (*ls, *lr, *lc) == (s, r, c)) {
                    continue;
                }
                let err = table.resolve(s, r, c).unwrap_err();
                let msg = err.to_string();
                assert!(
                    msg.starts_with(&format!("the regional handover table (mappings/routes.toml) has no route from {s} to {r} in context {c}")),
                    "{msg}"
                );
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 4 * 4 * 5 - listed.len());
}

#[test]
fn no_route_messages_are_exact_and_point_at_the_right_context() {
    let table = RouteTable::load();
    assert_eq!(
        table.resolve(Wijkverpleging, Huisarts, Regular).unwrap_err().to_string(),
        "the regional handover table (mappings/routes.toml) has no route from wijkverpleging to huisarts in context regular"
    );
    let e: NoRoute = table.resolve(Huisarts, SpecialistOuderengeneeskunde, Regular).unwrap_err();
    assert_eq!(e.routed_contexts, [NursingHomeAdmission, FirstLineConsult]);
    assert!(
        e.to_string().ends_with(
            "; it routes this sender and recipient only in context nursing-home-admission or first-line-consult"
        ),
        "{e}"
    );
}

#[test]
fn fhir_is_offered_on_every_row_to_a_recipient_that_takes_it() {
    let table = RouteTable::load();
    assert_eq!(table.also_offer(), [Fhir]);
    for (s, r, c, channels) in expected() {
        let mut with_fhir = channels.clone();
        with_fhir.push(Fhir);
        assert_eq!(table.resolve_for_recipient(s, r, c, &[Fhir, Edifact]), Ok(with_fhir));
        assert_eq!(table.resolve_for_recipient(s, r, c, &[]), Ok(channels));
    }
    assert!(
        table.resolve_for_recipient(Wijkverpleging, Huisarts, Regular, &[Fhir]).is_err(),
        "FHIR rides on a route, it is not one"
    );
}

const EXTRA_ROW: &str = r#"
[[row]]
row = 8
sender = "wijkverpleging"
recipient = "huisarts"
as_written = "Regionale aanvulling: wijkverpleging meldt wijzigingen aan de huisarts"
contexts = ["regular"]
channels = ["secure-mail"]
"#;

#[test]
fn a_deployment_file_adds_a_row_without_code() {
    let regional = include_str!("../mappings/routes.toml");
    let table = RouteTable::from_toml(&format!("{regional}{EXTRA_ROW}")).unwrap();
    assert_eq!(table.resolve(Wijkverpleging, Huisarts, Regular), Ok(vec![SecureMail]));
    for (s, r, c, channels) in expected() {
        assert_eq!(table.resolve(s, r, c), Ok(channels));
    }
    assert!(render_table(&table).lines().any(|l| l.starts_with("8 ") && l.contains("secure-mail")));

    // From a file, the messages name that file.
    let path = std::env::temp_dir().join(format!("acp-gateway-routes-{}.toml", std::process::id()));
    std::fs::write(&path, format!("{regional}{EXTRA_ROW}")).unwrap();
    let from_file = RouteTable::from_file(&path);
    let _ = std::fs::remove_file(&path);
    let err = from_file.unwrap().resolve(Wijkverpleging, MedischSpecialist, Regular).unwrap_err().to_string();
    assert!(err.starts_with(&format!("the regional handover table ({}) has no route", path.display())), "{err}");
}

#[test]
fn invalid_tables_are_refused_naming_row_and_field() {
    let row = |body: &str| {
        format!("name = \"t\"\n[[row]]\nrow = 9\nsender = \"huisarts\"\nrecipient = \"wijkverpleging\"\n{body}\n")
    };
    let cases = [
        (row("contexts = [\"regular\"]\nchannels = [\"fax\"]"), "row 9, field `channels`: unknown channel \"fax\""),
        (row("contexts = [\"weekend\"]\nchannels = [\"mdo\"]"), "row 9, field `contexts`: unknown context \"weekend\""),
        (row("channels = [\"mdo\"]"), "row 9, field `contexts`: missing"),
        (row("contexts = [\"regular\"]"), "row 9, field `channels`: missing"),
        (row("contexts = [\"regular\"]\nchannels = [\"mdo\", \"mdo\"]"), "row 9, field `channels`: mdo is listed twice"),
        (row("[row.by_context]\nweekend = [\"mdo\"]"), "row 9, field `by_context.weekend`: unknown context"),
        (row("contexts = [\"regular\"]\nchannels = [\"mdo\"]\n[row.by_context]\nregular = [\"mdo\"]"), "row 9, field `by_context`: give either"),
        (
            "name = \"t\"\n[[row]]\nrow = 1\nsender = \"arts\"\nrecipient = \"huisarts\"\ncontexts = [\"regular\"]\nchannels = [\"mdo\"]\n".to_owned(),
            "row 1, field `sender`: unknown role \"arts\"; expected one of: medisch-specialist, huisarts",
        ),
        (
            format!("{}[[row]]\nrow = 10\nsender = \"huisarts\"\nrecipient = \"wijkverpleging\"\ncontexts = [\"regular\"]\nchannels = [\"post\"]\n", row("contexts = [\"regular\"]\nchannels = [\"mdo\"]")),
            "row 10, field `contexts`: huisarts to wijkverpleging in context regular is already routed by row 9",
        ),
        ("name = \"t\"\nalso_offer = [\"telex\"]\n".to_owned(), "table, field `also_offer`: unknown channel \"telex\""),
    ];
    for (toml, want) in cases {
        let err = RouteTable::from_toml(&toml).unwrap_err().to_string();
        assert!(err.contains(want), "want {want:?}, got {err:?}");
    }
    // A misspelt key is an error too, not a silently ignored setting.
    let typo = RouteTable::from_toml(&row("contexts = [\"regular\"]\nchanels = [\"mdo\"]")).unwrap_err().to_string();
    assert!(typo.contains("chanels"), "{typo}");
}

#[test]
fn the_listing_shows_every_row_and_one_combination_on_request() {
    let table = RouteTable::load();
    let listing = render_table(&table);
    for n in 1..=7 {
        assert!(listing.lines().any(|l| l.starts_with(&format!("{n} "))), "row {n} missing:\n{listing}");
    }
    for c in [Edifact, Post, Zorgdomein, Mdo, Dossier, SecureMail] {
        assert!(listing.contains(c.key()), "{c} missing:\n{listing}");
    }
    assert!(listing.contains("also offers fhir"), "{listing}");

    let one = render_routes(&table, Some(SpecialistOuderengeneeskunde), Some(Huisarts), Some(Regular)).unwrap();
    assert!(
        one.contains("secure-mail, post")
            && one.contains("Row 7 of the regional handover table (mappings/routes.toml)"),
        "{one}"
    );
    let none = render_routes(&table, Some(Wijkverpleging), Some(Huisarts), Some(Regular)).unwrap_err();
    assert!(none.to_string().contains("has no route from wijkverpleging to huisarts"));
    let by_context = render_routes(&table, None, None, Some(Referral)).unwrap();
    assert!(by_context.contains("zorgdomein") && !by_context.contains("edifact"), "{by_context}");
}
