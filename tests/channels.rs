//! Every channel of the regional handover table, rendered by `translate` for every fixture, and read
//! back by something that is not the writer:
//! - golden files per channel (`tests/golden/<letter|edifact|pdf|mail|zorgdomein|dossier|mdo>/`;
//!   `UPDATE_GOLDEN=1 cargo test --test channels` rewrites them after an intended change);
//! - the PDF through `pdftotext` (Debian poppler-utils): every treatment limit's line, with its decision
//!   and restriction text, is in the extracted text;
//! - the mail through Python's `email` package (`tests/mail_oracle.py`): no defects, the letter text
//!   decoded exactly, the PDF attachment byte-identical to the printed letter, no BSN or name in any
//!   header;
//! - the ZorgDomein package, the dossier and the MDO item as FHIR: the A20 referral, references that
//!   resolve, the PDF inside, and the npm `fhir` validator (`tests/fhir_oracle`).
//!
//! A checker that is missing fails the test under CI (`CI` set) and prints a loud SKIPPED line otherwise.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use acp_gateway::record::*;
use acp_gateway::render::letter;
use acp_gateway::routing::{Channel, Context, Role, RouteTable};
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::{crate_path, read_valid, uniform_fixtures};

/// The recipient's AGB code the tests pass, to find it in the ZorgDomein package.
const RECIPIENT_AGB: &str = "01234567";

/// Every (sender, recipient, channel) the table routes, with one context in which it does.
fn table_routes() -> Vec<(Role, Role, Context, Channel)> {
    let table = RouteTable::load();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for &s in Role::ALL {
        for &r in Role::ALL {
            for &c in Context::ALL {
                for channel in table.resolve(s, r, c).unwrap_or_default() {
                    if seen.insert((s.to_string(), r.to_string(), channel.to_string())) {
                        out.push((s, r, c, channel));
                    }
                }
            }
        }
    }
    out
}

/// The `translate --to` format and golden folder of a channel.
fn format_of(channel: Channel) -> (&'static str, &'static str) {
    match channel {
        Channel::Edifact => ("edifact", "edi"),
        Channel::Post => ("pdf", "pdf"),
        Channel::SecureMail => ("mail", "eml"),
        Channel::Zorgdomein => ("zorgdomein", "json"),
        Channel::Dossier => ("dossier", "json"),
        Channel::Mdo => ("mdo", "json"),
        Channel::Fhir => ("fhir-json", "json"),
    }
}

fn translate(fixture: &Path, args: &[&str]) -> Vec<u8> {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_acp-gateway"))
        .arg("translate")
        .arg(fixture)
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "translate {} {args:?}: {}", fixture.display(), String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The parties' flags every channel output is rendered with.
fn party_flags(sender: Role, recipient: Role) -> Vec<String> {
    [
        ("--sender", sender.to_string()),
        ("--recipient", recipient.to_string()),
        ("--sender-organization", "Ziekenhuis Noord & Zuid".to_owned()),
        ("--sender-name", "Dr. A. Özdemir".to_owned()),
        ("--sender-email", "pzp@ziekenhuis.example".to_owned()),
        ("--recipient-organization", "Huisartsenpraktijk De Linde".to_owned()),
        ("--recipient-name", "H. Zwartkruis".to_owned()),
        ("--recipient-agb", RECIPIENT_AGB.to_owned()),
        ("--recipient-email", "praktijk@delinde.example".to_owned()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_owned(), v])
    .collect()
}

fn render(fixture: &Path, channel: Channel, sender: Role, recipient: Role) -> Vec<u8> {
    let (format, _) = format_of(channel);
    let mut args = vec!["--to".to_owned(), format.to_owned()];
    if channel == Channel::Edifact {
        args.extend(["--sender", &sender.to_string(), "--recipient", &recipient.to_string()].map(str::to_owned));
        args.extend(["--edifact-recipient".to_owned(), "500000201".to_owned()]);
    } else {
        args.extend(party_flags(sender, recipient));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    translate(fixture, &args)
}

/// Compares with the golden file, or writes it under `UPDATE_GOLDEN=1`.
fn golden(folder: &str, name: &str, bytes: &[u8]) {
    let path = crate_path(&format!("tests/golden/{folder}/{name}"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        return;
    }
    let want = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 cargo test --test channels writes it)", path.display()));
    assert!(
        want == bytes,
        "{} differs from what translate renders now (UPDATE_GOLDEN=1 rewrites it after an intended change)",
        path.display()
    );
}

fn fixture_paths() -> Vec<(String, PathBuf, AcpRecord)> {
    let fixtures = uniform_fixtures();
    assert!(fixtures.len() >= 10, "fixtures/uniform-*.json");
    fixtures
        .into_iter()
        .map(|(name, bytes)| {
            let record = read_valid(&name, &bytes);
            (name.trim_end_matches(".json").to_owned(), crate_path(&format!("fixtures/{name}")), record)
        })
        .collect()
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How the letter must show a decision (as tests/letter.rs states it).
fn shown(d: &Decision) -> String {
    let display = d.code().entry().coding.display.clone();
    match d {
        Decision::DoNotPerform => display.to_uppercase(),
        Decision::PerformWithRestrictions { restriction } => {
            format!("Ja, maar met beperkingen: {}", letter::shown_text(restriction))
        }
        Decision::Perform | Decision::Unknown => display,
    }
}

/// Every treatment limit of the record as the letter's item for it (the line with its detail lines),
/// each checked to carry the decision (with the restriction text) first.
fn limit_items(record: &AcpRecord) -> Vec<String> {
    let text = letter::render(record);
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let item_at = |start: usize| {
        let mut out = vec![lines[start]];
        for l in &lines[start + 1..] {
            if l.trim().is_empty() || indent(l) <= indent(lines[start]) {
                break;
            }
            out.push(l);
        }
        out.join("\n")
    };
    let limits: Vec<(&str, &TreatmentLimit)> = ["4a.", "4b.", "4c.", "4d.", "4e.", "4f."]
        .into_iter()
        .zip(NAMED_TREATMENTS)
        .filter_map(|(p, t)| record.treatment_limits.get(t).map(|l| (p, l)))
        .chain(record.treatment_limits.other.iter().map(|o| ("4g.", &o.limit)))
        .collect();
    let mut used = BTreeSet::new();
    let mut out = Vec::new();
    for (prefix, limit) in limits {
        let start = (0..lines.len())
            .find(|i| lines[*i].trim_start().starts_with(prefix) && !used.contains(i))
            .unwrap_or_else(|| panic!("no {prefix} item in the letter:\n{text}"));
        used.insert(start);
        let item = item_at(start);
        assert!(squash(&item).contains(&squash(&shown(&limit.decision))), "{prefix}: {item}");
        out.push(item);
    }
    out
}

#[test]
fn every_route_of_the_table_renders_for_every_fixture_as_its_golden_file() {
    let routes = table_routes();
    let channels: BTreeSet<String> = routes.iter().map(|r| r.3.to_string()).collect();
    for want in ["edifact", "post", "zorgdomein", "mdo", "dossier", "secure-mail"] {
        assert!(channels.contains(want), "the table routes no {want}: {channels:?}");
    }
    for (stem, path, _) in fixture_paths() {
        golden("letter", &format!("{stem}.txt"), &translate(&path, &["--to", "letter"]));
        for &(sender, recipient, _, channel) in &routes {
            let (_, ext) = format_of(channel);
            let bytes = render(&path, channel, sender, recipient);
            assert_eq!(bytes, render(&path, channel, sender, recipient), "{stem} {channel}: not deterministic");
            let (folder, _) = match channel {
                Channel::Post => ("pdf", ()),
                Channel::SecureMail => ("mail", ()),
                other => (format_of(other).0, ()),
            };
            // The ZorgDomein package's embedded PDF is kept as its digest: the PDF bytes are checked
            // against the printed letter in their own test, and the golden stays readable and small.
            let kept = if channel == Channel::Zorgdomein { pdf_as_digest(&bytes) } else { bytes };
            golden(folder, &format!("{stem}.{sender}-to-{recipient}.{ext}"), &kept);
        }
    }
}

/// A FHIR Bundle with every attachment's base64 `data` replaced by `sha256:<hex of the bytes>`.
fn pdf_as_digest(bundle: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    fn walk(v: &mut Value) {
        match v {
            Value::Object(o) => {
                if let (Some(Value::String(data)), Some(Value::String(_))) = (o.get("data"), o.get("contentType")) {
                    let bytes = base64::engine::general_purpose::STANDARD.decode(data).expect("base64 attachment");
                    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
                    o.insert("data".into(), Value::String(digest));
                }
                o.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_slice(bundle).expect("FHIR JSON");
    walk(&mut v);
    let mut out = serde_json::to_vec_pretty(&v).unwrap();
    out.push(b'\n');
    out
}

#[test]
fn an_unrouted_pair_is_refused_naming_the_table() {
    let (_, path, _) = &fixture_paths()[0];
    let out = Command::new(env!("CARGO_BIN_EXE_acp-gateway"))
        .args([
            "translate",
            path.to_str().unwrap(),
            "--to",
            "mail",
            "--sender",
            "wijkverpleging",
            "--recipient",
            "huisarts",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("handover table"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// --- the PDF, read by pdftotext --------------------------------------------------------------------------

/// Whether an external tool runs; under CI its absence fails the test, elsewhere it skips loudly.
fn tool_ready(program: &str, args: &[&str], install: &str) -> bool {
    if Command::new(program).args(args).output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    let why = format!("{program} is not available ({install})");
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("\n*** SKIPPED: {why} ***\n");
    false
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("acp-gateway-channels-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pdftotext(pdf: &[u8], dir: &Path, name: &str) -> String {
    let file = dir.join(format!("{name}.pdf"));
    std::fs::write(&file, pdf).unwrap();
    let out = Command::new("pdftotext").args(["-enc", "UTF-8"]).arg(&file).arg("-").output().unwrap();
    assert!(out.status.success(), "pdftotext {name}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn pdftotext_finds_every_treatment_limit_with_its_decision_and_restriction() {
    if !tool_ready("pdftotext", &["-v"], "apt-get install -y poppler-utils") {
        return;
    }
    let dir = temp_dir("pdf");
    for (stem, path, record) in fixture_paths() {
        let pdf = render(&path, Channel::Post, Role::MedischSpecialist, Role::SpecialistOuderengeneeskunde);
        assert!(pdf.starts_with(b"%PDF-"), "{stem}");
        let text = squash(&pdftotext(&pdf, &dir, &stem));
        let items = limit_items(&record);
        assert!(!items.is_empty(), "{stem} has no treatment limits");
        for item in items {
            assert!(text.contains(&squash(&item)), "{stem}: the PDF text lacks\n{item}\n--- pdftotext:\n{text}");
        }
        // Unknown answers are stated, and the page furniture says whose letter it is.
        if let Some(name) = Some(record.patient.name.display()).filter(|n| !n.is_empty()) {
            assert!(text.contains(&name), "{stem}: patient name");
        }
        assert!(text.contains("Pagina 1 van"), "{stem}: page numbers");
        assert!(
            text.contains("Huisartsenpraktijk De Linde") && text.contains("Ziekenhuis Noord & Zuid"),
            "{stem}: address blocks"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn characters_no_font_has_are_printed_as_code_points_not_lost() {
    if !tool_ready("pdftotext", &["-v"], "apt-get install -y poppler-utils") {
        return;
    }
    let (_, _, mut record) = fixture_paths().remove(0);
    // U+0378 is unassigned: no font can have it. The emoji and the Chinese print as written.
    let restriction = "Alleen 🙂 bij\tkoorts; 中文 geen ‘tube’ — ≤ 48 uur \u{378}";
    record.treatment_limits.antibiotics = Some(TreatmentLimit {
        decision: Decision::new(DecisionCode::PerformWithRestrictions, Some(restriction.into())).unwrap(),
        explanation: None,
        discussed_on: None,
    });
    let pdf = post_pdf(&record, Role::MedischSpecialist, Role::SpecialistOuderengeneeskunde);
    assert!(String::from_utf8_lossy(&pdf).contains("<pdfaid:part>2</pdfaid:part>"), "still PDF/A");
    let dir = temp_dir("codepoints");
    let text = squash(&pdftotext(&pdf, &dir, "letter"));
    let want = "Behandeling met antibiotica: Ja, maar met beperkingen: Alleen 🙂 bij koorts; 中文 geen ‘tube’ — ≤ 48 uur [U+0378]";
    assert!(text.contains(want), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

// --- every script (issue 11 item 6) and a word of 160,000 characters (issue 17 item 2) -------------------

/// Text as pdftotext gives it, without the direction marks it puts around right-to-left text
/// (U+202A-U+202E), squashed.
fn without_direction_marks(text: &str) -> String {
    squash(&text.chars().filter(|c| !('\u{202A}'..='\u{202E}').contains(c)).collect::<String>())
}

#[test]
fn every_script_of_a_restriction_and_the_care_wishes_prints_and_reads_back() {
    if !tool_ready("pdftotext", &["-v"], "apt-get install -y poppler-utils") {
        return;
    }
    let (_, _, mut record) = fixture_paths().remove(0);
    // Left-to-right scripts: Chinese (simplified and traditional), Japanese, Korean, Hindi, Thai,
    // Tigrinya, Russian, Greek, emoji.
    let ltr = "不要抢救 不要搶救 蘇生しないでください 심폐소생술 거부 पुनर्जीवन नहीं ไม่ต้องการ ኣይትሕደስ Не реанимировать Όχι ανάνηψη 🙂 ❤ 👍";
    // Right-to-left: Hebrew, and Arabic words without the lam-alef ligature (see below).
    let hebrew = "אין החייאה";
    let arabic = "عدم إنعاش المريض";
    let restriction = format!("Alleen thuis: {ltr} en {hebrew} en {arabic} einde");
    record.treatment_limits.hospital_admission = Some(TreatmentLimit {
        decision: Decision::new(DecisionCode::PerformWithRestrictions, Some(restriction.clone())).unwrap(),
        explanation: None,
        discussed_on: None,
    });
    // Lam-alef is one glyph (a ligature) for two letters: pdftotext gives its two letters in
    // reverse, which is poppler's reading of a right-to-left ligature, not the PDF's content.
    let wishes = "Wil thuis sterven; لا إنعاش الآن. 家族に連絡してください。";
    record.care_wishes = Some(wishes.to_owned());
    let pdf = post_pdf(&record, Role::MedischSpecialist, Role::SpecialistOuderengeneeskunde);
    let raw = String::from_utf8_lossy(&pdf);
    assert!(raw.contains("<pdfaid:part>2</pdfaid:part><pdfaid:conformance>U</pdfaid:conformance>"), "PDF/A-2u, validated");
    let dir = temp_dir("scripts");
    let text = without_direction_marks(&pdftotext(&pdf, &dir, "letter"));
    assert!(!text.contains("[U+"), "no code points: every character has a font\n{text}");
    // Left-to-right text reads back exactly, in order.
    assert!(text.contains(&squash(&format!("Alleen thuis: {ltr} en"))), "{text}");
    // Right-to-left phrases read back in logical order, each in its place in the Dutch sentence.
    // poppler drops the space after a right-to-left phrase (the page shows it: the phrase is drawn
    // one space's width before the next word), so that space is allowed to be missing here.
    for (rtl, next) in [(hebrew, "en"), (arabic, "einde")] {
        assert!(
            text.contains(&format!(" {rtl} {next}")) || text.contains(&format!(" {rtl}{next}")),
            "{rtl}:\n{text}"
        );
    }
    assert!(text.contains("Wil thuis sterven;") && text.contains("家族に連絡してください。"), "{text}");
    // With the ligature: the words without it exactly, the ligature's letters all there.
    assert!(text.contains("إنعاش"), "{text}");
    let letters = |s: &str| {
        let mut v: Vec<char> = s.chars().filter(|c| ('\u{0600}'..='\u{06FF}').contains(c)).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(letters(&text), letters(&format!("{arabic}{wishes}")), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_word_of_160000_characters_prints_whole_across_lines_and_pages() {
    if !tool_ready("pdftotext", &["-v"], "apt-get install -y poppler-utils") {
        return;
    }
    let (_, _, mut record) = fixture_paths().remove(0);
    // Numbered pieces, so a lost, doubled or reordered piece shows.
    let word: String = (0..20_000).map(|i| format!("w{i:07}")).collect();
    assert_eq!(word.len(), 160_000);
    record.patient.name.family = Some(word.clone());
    record.care_wishes = Some(format!("Voor {word} na"));
    let pdf = post_pdf(&record, Role::MedischSpecialist, Role::SpecialistOuderengeneeskunde);
    assert!(String::from_utf8_lossy(&pdf).contains("<pdfaid:part>2</pdfaid:part>"), "PDF/A");
    let dir = temp_dir("longword");
    let text = pdftotext(&pdf, &dir, "letter");
    // The page furniture (running header, footer) comes between the pages' lines; the word's lines
    // themselves, joined, are the word.
    let body: String = text
        .split('\u{c}')
        .flat_map(|page| page.lines().filter(|l| !l.starts_with("Proactieve zorgplanning:") && !l.starts_with("Pagina ")))
        .flat_map(|l| l.split_whitespace())
        .collect();
    assert!(body.contains(&format!("Voor{word}na")), "the care wishes' word is not whole");
    assert!(body.matches(&word).count() >= 2, "the name's word (in the letter) is not whole");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_pdf_is_a4_pdf_a_with_the_font_embedded() {
    let (_, path, _) = &fixture_paths()[2];
    let pdf = render(path, Channel::Post, Role::MedischSpecialist, Role::SpecialistOuderengeneeskunde);
    let text = String::from_utf8_lossy(&pdf);
    assert!(text.contains("/MediaBox[0 0 595.28 841.89]"), "A4");
    assert!(text.contains("<pdfaid:part>2</pdfaid:part><pdfaid:conformance>U</pdfaid:conformance>"), "PDF/A-2u");
    assert!(text.contains("/FontFile2"), "the TrueType font is embedded");
    // No clock: SOURCE_DATE_EPOCH dates the letter, the record otherwise.
    assert!(text.contains("2023-06-12T00:00:00+00:00"), "dated by the record");
    if !tool_ready("pdffonts", &["-v"], "apt-get install -y poppler-utils") {
        return;
    }
    let dir = temp_dir("fonts");
    let file = dir.join("letter.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let fonts = String::from_utf8(Command::new("pdffonts").arg(&file).output().unwrap().stdout).unwrap();
    let row = fonts.lines().find(|l| l.contains("DejaVuSans")).unwrap_or_else(|| panic!("{fonts}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[cols.len() - 5..cols.len() - 2], ["yes", "yes", "yes"], "embedded, subset, unicode: {row}");
    let _ = std::fs::remove_dir_all(&dir);
}

// --- the mail, read by Python's email package --------------------------------------------------------------

#[test]
fn the_mail_reads_back_with_the_letter_the_pdf_and_no_patient_data_in_headers() {
    if !tool_ready("python3", &["-c", "import email.policy"], "python3 with its standard library") {
        return;
    }
    let dir = temp_dir("mail");
    let (sender, recipient) = (Role::SpecialistOuderengeneeskunde, Role::Huisarts);
    let mut files = Vec::new();
    let mut expected = Vec::new();
    for (stem, path, record) in fixture_paths() {
        let mail = render(&path, Channel::SecureMail, sender, recipient);
        assert!(
            mail.windows(2).filter(|w| w == b"\r\n").count() == mail.iter().filter(|b| **b == b'\n').count(),
            "CRLF only"
        );
        assert!(mail.split(|b| *b == b'\n').all(|l| l.len() <= 79), "{stem}: a line longer than 78 characters");
        let file = dir.join(format!("{stem}.eml"));
        std::fs::write(&file, &mail).unwrap();
        files.push(file);
        let pdf = render(&path, Channel::Post, sender, recipient);
        assert_eq!(pdf, post_pdf(&record, sender, recipient), "{stem}: translate and the service render alike");
        expected.push((stem, record, hex::encode(Sha256::digest(&pdf)), pdf.len()));
    }
    let out = Command::new("python3").arg(crate_path("tests/mail_oracle.py")).args(&files).output().unwrap();
    assert!(out.status.success(), "the mail oracle failed: {}", String::from_utf8_lossy(&out.stderr));
    let parsed: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(parsed.len(), expected.len());
    let mut ids = BTreeSet::new();
    for (m, (stem, record, sha, size)) in parsed.iter().zip(expected) {
        assert_eq!(m["content_type"], "multipart/mixed", "{stem}");
        assert_eq!(m["defects"], serde_json::json!([]), "{stem}");
        for p in m["parts"].as_array().unwrap() {
            assert_eq!(p["defects"], serde_json::json!([]), "{stem}");
        }
        assert_eq!(m["text"].as_str(), Some(letter::render(&record).as_str()), "{stem}: the letter text");
        assert_eq!(m["charset"], "utf-8");
        let att = &m["attachments"][0];
        assert_eq!(att["content_type"], "application/pdf", "{stem}");
        assert_eq!(
            (att["sha256"].as_str(), att["size"].as_u64()),
            (Some(sha.as_str()), Some(size as u64)),
            "{stem}: the PDF"
        );
        // Every header of the message and its parts, decoded: no BSN, no part of the patient's name.
        let mut all_headers: Vec<String> = Vec::new();
        for h in m["headers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(m["parts"].as_array().unwrap().iter().flat_map(|p| p["headers"].as_array().unwrap()))
        {
            all_headers.push(format!("{}: {}", h[0].as_str().unwrap(), h[1].as_str().unwrap()));
        }
        let header_text = all_headers.join("\n").to_lowercase();
        let mut forbidden: Vec<String> = record.patient.bsn.iter().map(|b| b.to_string()).collect();
        let n = &record.patient.name;
        forbidden.extend(
            [&n.given, &n.family].into_iter().flatten().flat_map(|s| s.split_whitespace().map(str::to_lowercase)),
        );
        forbidden.retain(|f| f.len() > 2);
        for f in forbidden {
            assert!(!header_text.contains(&f), "{stem}: {f:?} in a header:\n{header_text}");
        }
        let get = |name: &str| {
            m["headers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h[0] == name)
                .and_then(|h| h[1].as_str())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(get("Subject"), "Overdracht proactieve zorgplanning");
        assert!(get("To").contains("praktijk@delinde.example"), "{stem}");
        // Python 3.11 keeps the folding space between encoded words that RFC 2047 drops.
        assert!(squash(&get("From")).contains("Dr. A. Özdemir, Ziekenhuis Noord & Zuid"), "{stem}: {}", get("From"));
        let date = record.date_filled_in.as_ref().unwrap().as_str()[..10].to_owned();
        assert!(m["date"].as_str().unwrap().starts_with(&date), "{stem}: dated by the record");
        assert!(ids.insert(get("Message-ID")), "{stem}: Message-IDs differ per record");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_message_id_is_stable_per_route_and_the_date_follows_source_date_epoch() {
    let (_, path, _) = &fixture_paths()[0];
    let run = |extra: &[&str], epoch: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_acp-gateway"));
        c.args(["translate", path.to_str().unwrap(), "--to", "mail"]).args(extra);
        match epoch {
            Some(e) => c.env("SOURCE_DATE_EPOCH", e),
            None => c.env_remove("SOURCE_DATE_EPOCH"),
        };
        String::from_utf8(c.output().unwrap().stdout).unwrap()
    };
    let header = |m: &str, name: &str| m.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_owned();
    let a = run(&[], None);
    assert_eq!(header(&a, "Message-ID:"), header(&run(&[], None), "Message-ID:"));
    let other = run(&["--recipient-email", "ander@example.nl"], None);
    assert_ne!(header(&a, "Message-ID:"), header(&other, "Message-ID:"), "another recipient, another Message-ID");
    assert_eq!(header(&run(&[], Some("1767225600")), "Date:"), "Date: Thu, 01 Jan 2026 00:00:00 +0000");
}

// --- the FHIR packagings ---------------------------------------------------------------------------------

fn entries(b: &Value) -> &Vec<Value> {
    b["entry"].as_array().unwrap()
}

fn resources<'a>(b: &'a Value, t: &str) -> Vec<&'a Value> {
    entries(b).iter().map(|e| &e["resource"]).filter(|r| r["resourceType"] == t).collect()
}

fn collect_references<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x) {
                    ("reference", Value::String(s)) => out.push(s),
                    _ => collect_references(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_references(x, out)),
        _ => {}
    }
}

/// A FHIR document: Composition first, identifier and timestamp, unique fullUrls, every urn:uuid
/// reference resolving inside, every resource but the Patient in a section.
fn is_document(label: &str, b: &Value) {
    assert_eq!(b["resourceType"], "Bundle", "{label}");
    assert_eq!(b["type"], "document", "{label}");
    assert!(b["identifier"]["system"].is_string() && b["identifier"]["value"].is_string(), "{label}: bdl-9");
    assert!(b["timestamp"].is_string(), "{label}: bdl-10");
    assert_eq!(entries(b)[0]["resource"]["resourceType"], "Composition", "{label}: bdl-11");
    let urls: Vec<&str> = entries(b).iter().map(|e| e["fullUrl"].as_str().unwrap()).collect();
    let unique: BTreeSet<&str> = urls.iter().copied().collect();
    assert_eq!(unique.len(), urls.len(), "{label}: fullUrls unique");
    let mut refs = Vec::new();
    collect_references(b, &mut refs);
    for r in refs.iter().filter(|r| r.starts_with("urn:uuid:")) {
        assert!(unique.contains(r), "{label}: {r} does not resolve");
    }
    let composition = &entries(b)[0]["resource"];
    let mut in_sections = Vec::new();
    collect_references(&composition["section"], &mut in_sections);
    let subject = composition["subject"]["reference"].as_str();
    for e in &entries(b)[1..] {
        let url = e["fullUrl"].as_str().unwrap();
        let referenced = in_sections.contains(&url) || Some(url) == subject || refs.contains(&url);
        assert!(referenced, "{label}: {url} ({}) is in no section", e["resource"]["resourceType"]);
    }
}

#[test]
fn the_zorgdomein_package_refers_with_a20_and_carries_the_pdf_and_the_acp_resources() {
    use base64::Engine as _;
    for (stem, path, record) in fixture_paths() {
        for (sender, recipient) in
            [(Role::Huisarts, Role::MedischSpecialist), (Role::SpecialistOuderengeneeskunde, Role::MedischSpecialist)]
        {
            let b: Value = serde_json::from_slice(&render(&path, Channel::Zorgdomein, sender, recipient)).unwrap();
            is_document(&stem, &b);
            let sr = resources(&b, "ServiceRequest");
            assert_eq!(sr.len(), 1, "{stem}");
            let reason = &sr[0]["reasonCode"][0]["coding"][0];
            assert_eq!(
                (reason["system"].as_str(), reason["code"].as_str(), reason["display"].as_str()),
                (Some("http://hl7.org/fhir/sid/icpc-1-nl"), Some("A20"), Some("Gesprek levenseinde/behandelwensen")),
                "{stem}"
            );
            // The suggested recipient by AGB, as the performer.
            let performer = sr[0]["performer"][0]["reference"].as_str().unwrap();
            let org = entries(&b).iter().find(|e| e["fullUrl"] == performer).unwrap();
            assert_eq!(org["resource"]["identifier"][0]["system"], "http://fhir.nl/fhir/NamingSystem/agb-z");
            assert_eq!(org["resource"]["identifier"][0]["value"], RECIPIENT_AGB);
            assert_eq!(sr[0]["performer"][0]["identifier"]["value"], RECIPIENT_AGB);
            // The PDF letter, byte for byte the printed one.
            let doc = resources(&b, "DocumentReference");
            let att = &doc[0]["content"][0]["attachment"];
            assert_eq!(att["contentType"], "application/pdf");
            let pdf = base64::engine::general_purpose::STANDARD.decode(att["data"].as_str().unwrap()).unwrap();
            assert_eq!(pdf, post_pdf(&record, sender, recipient), "{stem}: the attached PDF");
            // The structured ACP resources, with every treatment directive of the FHIR renderer.
            let acp = acp_gateway::render::fhir::bundle(&record, acp_gateway::render::fhir::BundleKind::Collection);
            let consents = acp
                .entry
                .iter()
                .filter(|e| e.resource.as_ref().is_some_and(|r| r.resource_type() == "Consent"))
                .count();
            assert_eq!(resources(&b, "Consent").len(), consents, "{stem}");
            assert!(!resources(&b, "QuestionnaireResponse").is_empty(), "{stem}");
            narrative_has_every_limit(&stem, &b, &record);
        }
    }
}

/// The PDF the post route would print for the same envelope as `party_flags` describes (the CLI refuses
/// `--to pdf` for a pair the table routes otherwise, so this goes through the library, with the
/// envelope JSON the CLI builds from those flags, member for member).
fn post_pdf(record: &AcpRecord, sender: Role, recipient: Role) -> Vec<u8> {
    use acp_gateway::service::render::{render_route, RouteContext};
    let s = serde_json::json!({
        "role": sender.to_string(),
        "organization": {"name": "Ziekenhuis Noord & Zuid"},
        "practitioner": {"name": "Dr. A. Özdemir"},
        "endpoints": {"email": "pzp@ziekenhuis.example"},
    });
    let r = serde_json::json!({
        "role": recipient.to_string(),
        "name": "H. Zwartkruis",
        "organization": {"name": "Huisartsenpraktijk De Linde", "agb": RECIPIENT_AGB},
        "endpoints": {"email": "praktijk@delinde.example"},
    });
    let ctx = RouteContext { sender: &s, recipient_index: 0, source_date_epoch: None };
    render_route(Channel::Post, record, &r, &ctx).unwrap().body.as_bytes().to_vec()
}

/// The letter narrative of a document's Composition, unescaped, holds every treatment limit's item.
fn narrative_has_every_limit(stem: &str, b: &Value, record: &AcpRecord) {
    let sections = entries(b)[0]["resource"]["section"].as_array().unwrap();
    let div = sections.iter().find_map(|s| s["text"]["div"].as_str()).expect("a letter section");
    let text = div.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    for item in limit_items(record) {
        assert!(text.contains(&item), "{stem}: narrative lacks\n{item}");
    }
}

#[test]
fn the_dossier_is_a_document_of_the_whole_record() {
    for (stem, path, record) in fixture_paths() {
        let b: Value = serde_json::from_slice(&render(
            &path,
            Channel::Dossier,
            Role::Huisarts,
            Role::SpecialistOuderengeneeskunde,
        ))
        .unwrap();
        is_document(&stem, &b);
        let acp = acp_gateway::render::fhir::bundle(&record, acp_gateway::render::fhir::BundleKind::Collection);
        for e in &acp.entry {
            let url = e.full_url.as_deref().unwrap();
            assert!(entries(&b).iter().any(|x| x["fullUrl"] == url), "{stem}: {url} missing");
        }
        narrative_has_every_limit(&stem, &b, &record);
    }
}

#[test]
fn the_mdo_item_is_a_task_for_the_patient_with_the_letter() {
    for (stem, path, record) in fixture_paths() {
        let t: Value =
            serde_json::from_slice(&render(&path, Channel::Mdo, Role::Huisarts, Role::Wijkverpleging)).unwrap();
        assert_eq!(t["resourceType"], "Task", "{stem}");
        assert_eq!((t["status"].as_str(), t["intent"].as_str()), (Some("requested"), Some("order")));
        assert!(t["description"].as_str().unwrap().contains("MDO"), "{stem}");
        if let Some(bsn) = &record.patient.bsn {
            assert_eq!(t["for"]["identifier"]["value"], bsn.to_string(), "{stem}");
        }
        assert!(t["for"]["reference"].as_str().unwrap().starts_with("Patient/"));
        assert!(t["focus"]["reference"].as_str().unwrap().starts_with("Procedure/"));
        let letter_text = t["input"][0]["valueString"].as_str().unwrap();
        assert_eq!(letter_text, letter::render(&record), "{stem}");
        for item in limit_items(&record) {
            assert!(letter_text.contains(&item));
        }
    }
}

#[test]
fn the_fhir_packagings_pass_an_independent_fhir_validator() {
    let installed = crate_path("tests/fhir_oracle/node_modules/fhir").is_dir();
    if !installed || !tool_ready("node", &["--version"], "Debian nodejs") {
        let why = "the npm package `fhir` is not installed (npm ci --prefix tests/fhir_oracle)";
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("\n*** SKIPPED: {why} ***\n");
        return;
    }
    let dir = temp_dir("fhir");
    let mut files = Vec::new();
    for (stem, path, _) in fixture_paths() {
        for (channel, sender, recipient) in [
            (Channel::Zorgdomein, Role::Huisarts, Role::MedischSpecialist),
            (Channel::Dossier, Role::Huisarts, Role::SpecialistOuderengeneeskunde),
            (Channel::Mdo, Role::Huisarts, Role::Wijkverpleging),
        ] {
            let file = dir.join(format!("{stem}.{channel}.json"));
            std::fs::write(&file, render(&path, channel, sender, recipient)).unwrap();
            files.push(file);
        }
    }
    let out = Command::new("node").arg(crate_path("tests/fhir_oracle/validate.js")).args(&files).output().unwrap();
    assert!(out.status.success(), "the FHIR oracle failed: {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), files.len());
    for l in lines {
        assert_eq!(l["errors"], serde_json::json!([]), "{}", l["file"]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// --- the service's route renderer --------------------------------------------------------------------------

#[test]
fn the_service_stores_each_channel_with_its_content_type() {
    use acp_gateway::service::render::{render_route, Body, RouteContext};
    let (_, _, record) = fixture_paths().remove(0);
    let sender =
        serde_json::json!({"role": "specialist-ouderengeneeskunde", "organization": {"name": "Zorggroep West"}});
    let recipient = serde_json::json!({"role": "huisarts", "endpoints": {"email": "praktijk@example.nl"}});
    let ctx = RouteContext { sender: &sender, recipient_index: 1, source_date_epoch: None };
    for (channel, content_type, binary) in [
        (Channel::Post, "application/pdf", true),
        (Channel::SecureMail, "message/rfc822", false),
        (Channel::Zorgdomein, "application/fhir+json", false),
        (Channel::Dossier, "application/fhir+json", false),
        (Channel::Mdo, "application/fhir+json", false),
    ] {
        let m = render_route(channel, &record, &recipient, &ctx).unwrap_or_else(|e| panic!("{channel}: {}", e.message));
        assert_eq!(m.content_type, content_type, "{channel}");
        assert_eq!(matches!(m.body, Body::Binary(_)), binary, "{channel}");
    }
    // The Message-ID names the recipient's position: another position, another Message-ID.
    let mail = |i: usize| {
        let ctx = RouteContext { recipient_index: i, ..ctx };
        let m = render_route(Channel::SecureMail, &record, &recipient, &ctx).unwrap();
        String::from_utf8(m.body.as_bytes().to_vec())
            .unwrap()
            .lines()
            .find(|l| l.starts_with("Message-ID:"))
            .unwrap()
            .to_owned()
    };
    assert!(mail(1).contains(".1@"), "{}", mail(1));
    assert_ne!(mail(1), mail(2));
    // An address that could forge a header is refused, naming the recipient's member.
    let bad = serde_json::json!({"role": "huisarts", "endpoints": {"email": "a@b.nl>\r\nBcc: x@y.nl"}});
    let e = render_route(Channel::SecureMail, &record, &bad, &ctx).unwrap_err();
    assert_eq!(e.recipient_pointer.as_deref(), Some("/endpoints/email"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..proptest::prelude::ProptestConfig::default() })]

    /// Whatever a restriction says, the letter prints as PDF/A and the mail carries it: no free text can
    /// make a channel fail or fall out of its format.
    #[test]
    fn any_restriction_prints_and_mails(restriction in "\\PC{1,200}") {
        use acp_gateway::service::render::{render_route, RouteContext};
        let Ok(decision) = Decision::new(DecisionCode::PerformWithRestrictions, Some(restriction.clone())) else {
            return Ok(());
        };
        let mut record = fixture_paths().remove(0).2;
        record.treatment_limits.resuscitation = Some(TreatmentLimit { decision, explanation: None, discussed_on: None });
        let sender = serde_json::json!({"role": "specialist-ouderengeneeskunde"});
        let recipient = serde_json::json!({"role": "huisarts"});
        let ctx = RouteContext { sender: &sender, recipient_index: 0, source_date_epoch: None };
        let pdf = render_route(Channel::Post, &record, &recipient, &ctx).unwrap();
        proptest::prop_assert!(String::from_utf8_lossy(pdf.body.as_bytes()).contains("<pdfaid:part>2</pdfaid:part>"));
        let mail = render_route(Channel::SecureMail, &record, &recipient, &ctx).unwrap();
        let text = String::from_utf8(mail.body.as_bytes().to_vec()).unwrap();
        proptest::prop_assert!(text.split("\r\n").all(|l| l.len() <= 78 && l.is_ascii()));
    }
}

// --- dates: Dutch local time, never 1970 (issue 11, item 9) ---------------------------------------------

/// How a 1970-01-01 date would show in each output: ISO, the letter's Dutch order, RFC 5322, Edifact's
/// UNB (YYMMDD) and DET (YY:MM:DD), and a PDF date.
const EPOCH_DATES: [&str; 6] = ["1970-01-01", "01-01-1970", "Jan 1970", "+700101:", "+70:01:01", "D:19700101"];

#[test]
fn no_output_of_any_fixture_is_dated_1970() {
    let mut inputs: Vec<PathBuf> = fixture_paths().into_iter().map(|(_, p, _)| p).collect();
    for ext in ["json", "xml"] {
        inputs.extend(support::files_in("fixtures/fhir", ext).into_iter().map(|(n, _)| crate_path(&format!("fixtures/fhir/{n}"))));
    }
    let pdf_text = tool_ready("pdftotext", &["-v"], "apt-get install -y poppler-utils");
    let dir = temp_dir("no-1970");
    let formats = [
        "record", "fhir-json", "fhir-xml", "questionnaire-response", "edifact", "letter", "pdf", "mail", "zorgdomein", "dossier",
        "mdo",
    ];
    for input in &inputs {
        for format in formats {
            let out = translate(input, &["--to", format]);
            let mut text = String::from_utf8_lossy(&out).into_owned();
            if format == "pdf" && pdf_text {
                text.push_str(&pdftotext(&out, &dir, "dated"));
            }
            for epoch in EPOCH_DATES {
                assert!(!text.contains(epoch), "{} --to {format} is dated 1970 ({epoch})", input.display());
            }
        }
    }
}

#[test]
fn times_in_utc_print_as_dutch_local_time_with_the_right_date() {
    let dir = temp_dir("dutch-time");
    for (instant, local, det) in [
        ("2026-03-29T00:30:00Z", "29-03-2026 01:30", "DET+26:03:29+01:30'"),
        ("2026-10-25T00:30:00Z", "25-10-2026 02:30", "DET+26:10:25+02:30'"),
        ("2026-12-31T23:30:00Z", "01-01-2027 00:30", "DET+27:01:01+00:30'"),
    ] {
        let path = dir.join("record.json");
        let record = serde_json::json!({
            "date_filled_in": instant,
            "patient": {"name": {"family": "Bakker"}, "birth_date": "1941-03-09"},
            "treatment_limits": {"resuscitation": {"decision": "do-not-perform"}}
        });
        std::fs::write(&path, record.to_string()).unwrap();
        let letter = String::from_utf8(translate(&path, &["--to", "letter"])).unwrap();
        assert!(letter.contains(&format!("Datum van het gesprek: {local}")), "{instant}: {letter}");
        let edifact = String::from_utf8(translate(&path, &["--to", "edifact"])).unwrap();
        assert!(edifact.contains(det), "{instant}: {edifact}");
    }
}
