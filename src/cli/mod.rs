//! The `acp-gateway` command line (contract: `../shared/spec/interface.md`, "Command line").
//!
//! Thin on purpose: parse arguments, call intake / validate / render, and map the outcome to an exit
//! status in one place. Exit statuses: 0 success, 1 invalid input (or no route), 2 usage error or an
//! unreadable file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::intake::{self, Intake};
use crate::record::{AcpRecord, Bsn};
use crate::routing::{self, Channel, Context, Role, RouteTable};
use crate::render;
use crate::validate::{Problem, Severity};

/// Exit statuses, as interface.md defines them.
const EXIT_OK: u8 = 0;
const EXIT_INVALID: u8 = 1;
const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(name = "acp-gateway", version, about = "Hands over ACP (proactieve zorgplanning) records between Dutch care providers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate ACP records (uniform JSON, QuestionnaireResponse, FHIR JSON or XML) and list every problem.
    Validate {
        /// Files to validate; `-` reads standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `text` for people, `json` for a FHIR OperationOutcome per file (one JSON document a line).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Translate one ACP record into another form.
    Translate {
        /// The input file; `-` reads standard input.
        file: PathBuf,
        /// The output form.
        #[arg(long, value_enum)]
        to: OutputFormat,
        /// The patient's BSN, for input forms that carry no patient identifier (a QuestionnaireResponse).
        #[arg(long)]
        bsn: Option<String>,
        /// Write the output here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The sending role (for channel outputs; checked against the handover table).
        #[arg(long, value_parser = |s: &str| s.parse::<Role>())]
        sender: Option<Role>,
        /// The receiving role (for channel outputs; checked against the handover table).
        #[arg(long, value_parser = |s: &str| s.parse::<Role>())]
        recipient: Option<Role>,
        /// Channel settings (TOML with sections as in mappings/channels.toml, e.g. [edifact]);
        /// without it the documented placeholders apply.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Edifact: the UNB recipient id (the GP's mailbox); overrides the config.
        #[arg(long)]
        edifact_recipient: Option<String>,
        /// Edifact: the UNB sender id; overrides the config.
        #[arg(long)]
        edifact_sender: Option<String>,
        /// Edifact: the Medeur message (medvri, the default, or medspe); overrides the config.
        #[arg(long, value_enum)]
        edifact_message: Option<MedeurArg>,
        /// FHIR: a `transaction` Bundle (default; PUTs with stable ids) or a `collection`.
        #[arg(long, value_enum, default_value_t = BundleArg::Transaction)]
        bundle: BundleArg,
        /// The parties of a channel output (pdf, mail, zorgdomein, dossier, mdo), as the API envelope
        /// would give them; without them the placeholders of mappings/packaging.toml apply.
        // Boxed: eight strings would make this variant much larger than the others.
        #[command(flatten)]
        parties: Box<PartyArgs>,
    },
    /// Measure the gateway's own throughput (figures on standard output).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Print the regional handover table, or the route(s) for one combination (exit 1: no route).
    Routes {
        #[arg(long, value_parser = |s: &str| s.parse::<Role>())]
        sender: Option<Role>,
        #[arg(long, value_parser = |s: &str| s.parse::<Role>())]
        recipient: Option<Role>,
        #[arg(long, value_parser = |s: &str| s.parse::<Context>())]
        context: Option<Context>,
        /// A deployment's own route table instead of mappings/routes.toml.
        #[arg(long)]
        table: Option<PathBuf>,
    },
    /// Run the gateway service (HTTP API) until SIGTERM/SIGINT.
    Serve {
        /// TOML configuration; without it: loopback 127.0.0.1:8080, SQLite in ./acp-gateway-data/.
        #[arg(long)]
        config: Option<PathBuf>,
        /// `text` for people, `json` for one JSON object per log line.
        #[arg(long, value_enum, default_value_t = LogFormatArg::Text)]
        log_format: LogFormatArg,
    },
    /// Run only the outbox delivery workers against the configured database until SIGTERM/SIGINT.
    Worker {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = LogFormatArg::Text)]
        log_format: LogFormatArg,
    },
    /// The audit trail (NEN 7513): verify its hash chain, or export one patient's entries.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Records per second for parse → validate → FHIR JSON render of one input, on one core.
    Translate {
        /// The input (any input form), e.g. the shared QuestionnaireResponse.
        #[arg(long)]
        input: PathBuf,
        /// How long to measure.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Deliveries per second of the outbox: N accepted handovers in a fresh SQLite database, timed
    /// until every route is delivered.
    Deliver {
        /// `spool`, or `smtp` (with `--smtp-port`) to a loopback SMTP server with STARTTLS.
        #[arg(long, default_value = "spool")]
        sink: String,
        #[arg(long, default_value_t = 2000)]
        routes: usize,
        /// Worker tasks.
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// The loopback SMTP server's port (`localhost`).
        #[arg(long)]
        smtp_port: Option<u16>,
        /// PEM CA that signed the SMTP server's certificate.
        #[arg(long)]
        smtp_ca: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain end to end: exit 0 intact, 1 broken (prints the first bad entry).
    Verify {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print one patient's entries (NEN 7513 field names; `--format fhir` for IHE BALP AuditEvents).
    Export {
        /// The patient's BSN.
        #[arg(long)]
        patient: String,
        #[arg(long, value_enum, default_value_t = AuditFormat::Json)]
        format: AuditFormat,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuditFormat {
    Json,
    Fhir,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// The canonical uniform record JSON.
    Record,
    /// A FHIR R4 Bundle of IKNL PZP resources, JSON.
    FhirJson,
    /// The same Bundle as FHIR XML.
    FhirXml,
    /// A QuestionnaireResponse answering the national form ACP-zib2020.
    QuestionnaireResponse,
    /// The Medeur Edifact interchange (MEDVRI, or MEDSPE on request) for the GP's mailbox.
    Edifact,
    /// The clinical letter text (Dutch) that every human-readable channel carries.
    Letter,
    /// The A4 PDF letter for the print queue (post).
    Pdf,
    /// The secure e-mail (MIME, message/rfc822): the letter as text and the PDF as attachment.
    Mail,
    /// The ZorgDomein referral package: a FHIR document Bundle with the ICPC A20 referral and the PDF.
    Zorgdomein,
    /// The dossier for a nursing-home admission: a FHIR document Bundle of the whole record.
    Dossier,
    /// The MDO worklist item (GP to district nursing): a FHIR Task.
    Mdo,
}

/// `translate`: who sends and who receives, for the address blocks, the mail headers and the suggested
/// ZorgDomein recipient.
#[derive(Debug, Clone, Default, clap::Args)]
struct PartyArgs {
    /// The sending organisation's name.
    #[arg(long)]
    sender_organization: Option<String>,
    /// The sending organisation's AGB code.
    #[arg(long)]
    sender_agb: Option<String>,
    /// The sending professional's name.
    #[arg(long)]
    sender_name: Option<String>,
    /// The sender's e-mail address (the mail's From).
    #[arg(long)]
    sender_email: Option<String>,
    /// The receiving professional's name.
    #[arg(long)]
    recipient_name: Option<String>,
    /// The receiving organisation's name.
    #[arg(long)]
    recipient_organization: Option<String>,
    /// The receiving organisation's AGB code (the ZorgDomein package suggests the recipient by it).
    #[arg(long)]
    recipient_agb: Option<String>,
    /// The recipient's e-mail address (the mail's To).
    #[arg(long)]
    recipient_email: Option<String>,
}

impl PartyArgs {
    /// The two parties as the API envelope writes them, so that `translate` renders exactly what the
    /// service would for the same envelope.
    fn envelope(&self, sender: Option<Role>, recipient: Option<Role>) -> (serde_json::Value, serde_json::Value) {
        use serde_json::{json, Map, Value};
        fn put(map: &mut Map<String, Value>, pointer: &[&str], value: &Option<String>) {
            let Some(v) = value else { return };
            let mut m = map;
            for key in &pointer[..pointer.len() - 1] {
                m = m.entry(*key).or_insert_with(|| json!({})).as_object_mut().expect("an object");
            }
            m.insert(pointer[pointer.len() - 1].to_owned(), Value::String(v.clone()));
        }
        let (mut s, mut r) = (Map::new(), Map::new());
        put(&mut s, &["role"], &sender.map(|x| x.to_string()));
        put(&mut s, &["organization", "name"], &self.sender_organization);
        put(&mut s, &["organization", "agb"], &self.sender_agb);
        put(&mut s, &["practitioner", "name"], &self.sender_name);
        put(&mut s, &["endpoints", "email"], &self.sender_email);
        put(&mut r, &["role"], &recipient.map(|x| x.to_string()));
        put(&mut r, &["name"], &self.recipient_name);
        put(&mut r, &["organization", "name"], &self.recipient_organization);
        put(&mut r, &["organization", "agb"], &self.recipient_agb);
        put(&mut r, &["endpoints", "email"], &self.recipient_email);
        (Value::Object(s), Value::Object(r))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MedeurArg {
    Medvri,
    Medspe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BundleArg {
    Transaction,
    Collection,
}

/// The `translate` options that shape a channel's output.
struct ChannelOptions {
    sender: Option<Role>,
    recipient: Option<Role>,
    config: Option<PathBuf>,
    edifact_recipient: Option<String>,
    edifact_sender: Option<String>,
    edifact_message: Option<MedeurArg>,
    bundle: BundleArg,
    parties: Box<PartyArgs>,
}

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    let code = match cli.command {
        Command::Validate { files, format } => validate(&files, format),
        Command::Translate {
            file,
            to,
            bsn,
            out,
            sender,
            recipient,
            config,
            edifact_recipient,
            edifact_sender,
            edifact_message,
            bundle,
            parties,
        } => {
            let options = ChannelOptions {
                sender, recipient, config, edifact_recipient, edifact_sender, edifact_message, bundle, parties,
            };
            translate(&file, to, bsn.as_deref(), out.as_deref(), &options)
        }
        Command::Bench { command: BenchCommand::Translate { input, seconds } } => bench_translate(&input, seconds),
        Command::Bench { command: BenchCommand::Deliver { sink, routes, workers, smtp_port, smtp_ca } } => {
            crate::service::commands::bench_deliver(&sink, routes, workers, smtp_port, smtp_ca.as_deref())
        }
        Command::Worker { config, log_format } => crate::service::commands::worker(
            config.as_deref(),
            match log_format {
                LogFormatArg::Text => crate::telemetry::LogFormat::Text,
                LogFormatArg::Json => crate::telemetry::LogFormat::Json,
            },
        ),
        Command::Routes { sender, recipient, context, table } => routes(sender, recipient, context, table.as_deref()),
        Command::Serve { config, log_format } => crate::service::commands::serve(
            config.as_deref(),
            match log_format {
                LogFormatArg::Text => crate::telemetry::LogFormat::Text,
                LogFormatArg::Json => crate::telemetry::LogFormat::Json,
            },
        ),
        Command::Audit { command: AuditCommand::Verify { config } } => crate::service::commands::audit_verify(config.as_deref()),
        Command::Audit { command: AuditCommand::Export { patient, format, config } } => {
            crate::service::commands::audit_export(config.as_deref(), &patient, format == AuditFormat::Fhir)
        }
    };
    ExitCode::from(code)
}

fn read_input(path: &Path) -> Result<Vec<u8>, String> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(|e| format!("standard input: {e}"))?;
        return Ok(buf);
    }
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > intake::MAX_INPUT_BYTES as u64 {
        // Read it anyway only up to the limit: intake reports the size as a problem of the input.
        return Ok(vec![b' '; intake::MAX_INPUT_BYTES + 1]);
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn validate(files: &[PathBuf], format: Format) -> u8 {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut status = EXIT_OK;
    for path in files {
        let bytes = match read_input(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("acp-gateway: cannot read {e}");
                status = EXIT_USAGE;
                continue;
            }
        };
        let result = intake::read(&bytes);
        if !result.is_valid() && status == EXIT_OK {
            status = EXIT_INVALID;
        }
        let _ = match format {
            Format::Text => write_text_report(&mut out, path, &result),
            Format::Json => writeln!(out, "{}", render::outcome::operation_outcome(&result.problems)),
        };
    }
    status
}

fn write_text_report(out: &mut impl Write, path: &Path, result: &Intake) -> std::io::Result<()> {
    let count = |s: Severity| result.problems.iter().filter(|p| p.severity == s).count();
    let form = result.form.map(|f| f.as_str()).unwrap_or("unrecognised input");
    let verdict = if result.is_valid() { "valid" } else { "INVALID" };
    writeln!(
        out,
        "{}: {verdict} ({form}): {} errors, {} warnings",
        path.display(),
        count(Severity::Error),
        count(Severity::Warning)
    )?;
    for p in &result.problems {
        writeln!(out, "  {p}")?;
    }
    Ok(())
}

fn print_problems(path: &Path, problems: &[Problem]) {
    for p in problems.iter().filter(|p| p.severity == Severity::Error) {
        eprintln!("{}: {p}", path.display());
    }
}

fn translate(path: &Path, to: OutputFormat, bsn: Option<&str>, out: Option<&Path>, options: &ChannelOptions) -> u8 {
    let bsn = match bsn.map(Bsn::parse).transpose() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("acp-gateway: --bsn: {e}");
            return EXIT_USAGE;
        }
    };
    let bytes = match read_input(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("acp-gateway: cannot read {e}");
            return EXIT_USAGE;
        }
    };
    let result = intake::read(&bytes);
    let Some(record) = result.valid_record() else {
        print_problems(path, &result.problems);
        return EXIT_INVALID;
    };
    let mut record = record.clone();
    if let Some(bsn) = bsn {
        match &record.patient.bsn {
            Some(existing) if *existing != bsn => {
                eprintln!("acp-gateway: --bsn {bsn} contradicts the record's BSN {existing}");
                return EXIT_INVALID;
            }
            _ => record.patient.bsn = Some(bsn),
        }
    }
    let rendered = match render_output(&record, to, options) {
        Ok(r) => r,
        Err((status, message)) => {
            eprintln!("acp-gateway: {message}");
            return status;
        }
    };
    let written = match out {
        Some(p) => std::fs::write(p, &rendered).map_err(|e| format!("{}: {e}", p.display())),
        None => std::io::stdout().lock().write_all(&rendered).map_err(|e| e.to_string()),
    };
    match written {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("acp-gateway: cannot write {e}");
            EXIT_USAGE
        }
    }
}

/// The channel a `translate` output belongs to, for checking `--sender/--recipient` against the table.
fn channel_of(to: OutputFormat) -> Option<Channel> {
    match to {
        OutputFormat::Edifact => Some(Channel::Edifact),
        OutputFormat::Pdf => Some(Channel::Post),
        OutputFormat::Mail => Some(Channel::SecureMail),
        OutputFormat::Zorgdomein => Some(Channel::Zorgdomein),
        OutputFormat::Dossier => Some(Channel::Dossier),
        OutputFormat::Mdo => Some(Channel::Mdo),
        _ => None,
    }
}

/// `SOURCE_DATE_EPOCH` (reproducible builds' convention), when set: the time a channel output is dated.
fn source_date_epoch() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse::<i64>().ok())
}

fn render_output(record: &AcpRecord, to: OutputFormat, options: &ChannelOptions) -> Result<Vec<u8>, (u8, String)> {
    // A channel output for a sender/recipient pair the handover table does not route that way is
    // refused, as the service would refuse it.
    if let (Some(channel), Some(sender), Some(recipient)) = (channel_of(to), options.sender, options.recipient) {
        let table = RouteTable::load();
        let offered = Context::ALL.iter().any(|c| {
            table.resolve(sender, recipient, *c).is_ok_and(|channels| channels.contains(&channel))
        });
        if !offered {
            return Err((
                EXIT_INVALID,
                format!("the regional handover table (mappings/routes.toml) has no {channel} route from {sender} to {recipient}"),
            ));
        }
    }
    let config = match &options.config {
        Some(p) => Some(std::fs::read_to_string(p).map_err(|e| (EXIT_USAGE, format!("cannot read {}: {e}", p.display())))?),
        None => None,
    };
    Ok(match to {
        OutputFormat::Record => render::record_json::render(record),
        OutputFormat::FhirJson | OutputFormat::FhirXml => {
            let kind = match options.bundle {
                BundleArg::Transaction => render::fhir::BundleKind::Transaction,
                BundleArg::Collection => render::fhir::BundleKind::Collection,
            };
            let bundle = render::fhir::bundle(record, kind);
            if to == OutputFormat::FhirJson {
                render::fhir::to_json(&bundle)
            } else {
                render::fhir::to_xml(&bundle)
            }
        }
        OutputFormat::QuestionnaireResponse => {
            let mut s = serde_json::to_string_pretty(&render::questionnaire::render(record))
                .map_err(|e| (EXIT_USAGE, e.to_string()))?;
            s.push('\n');
            s
        }
        OutputFormat::Letter => render::letter::render(record),
        OutputFormat::Edifact => {
            use render::edifact::{EdifactSettings, MedeurMessage, Stamp};
            let mut settings = match &config {
                Some(text) => EdifactSettings::from_toml(text).map_err(|e| (EXIT_USAGE, e.to_string()))?,
                None => EdifactSettings::default(),
            };
            if let Some(m) = &options.edifact_recipient {
                settings.recipient_mailbox = m.clone();
            }
            if let Some(m) = &options.edifact_sender {
                settings.sender_mailbox = m.clone();
            }
            if let Some(m) = options.edifact_message {
                settings.message = match m {
                    MedeurArg::Medvri => MedeurMessage::Medvri,
                    MedeurArg::Medspe => MedeurMessage::Medspe,
                };
            }
            // Reproducible builds' convention: the preparation time comes from SOURCE_DATE_EPOCH when
            // set, otherwise from the record; never from the wall clock.
            if let Some(secs) = source_date_epoch() {
                settings.prepared_at = Some(Stamp::from_unix_seconds(secs));
            }
            settings.check().map_err(|e| (EXIT_USAGE, e.to_string()))?;
            render::edifact::render(record, &settings)
        }
        OutputFormat::Pdf | OutputFormat::Mail | OutputFormat::Zorgdomein | OutputFormat::Dossier | OutputFormat::Mdo => {
            return packaged(record, to, options);
        }
    }
    .into_bytes())
}

/// The packaged channels, rendered through the service's own route renderer from the envelope the
/// flags describe, so `translate` gives the bytes the service would store for the same handover.
fn packaged(record: &AcpRecord, to: OutputFormat, options: &ChannelOptions) -> Result<Vec<u8>, (u8, String)> {
    let channel = channel_of(to).ok_or((EXIT_USAGE, "not a channel output".to_owned()))?;
    let (sender, recipient) = options.parties.envelope(options.sender, options.recipient);
    let ctx = crate::service::render::RouteContext { sender: &sender, recipient_index: 0, source_date_epoch: source_date_epoch() };
    crate::service::render::render_route(channel, record, &recipient, &ctx)
        .map(|m| m.body.as_bytes().to_vec())
        .map_err(|e| (EXIT_USAGE, format!("cannot render the {channel} message: {}", e.message)))
}

fn routes(sender: Option<Role>, recipient: Option<Role>, context: Option<Context>, table: Option<&Path>) -> u8 {
    let table = match table {
        Some(p) => match RouteTable::from_file(p) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("acp-gateway: {e}");
                return EXIT_USAGE;
            }
        },
        None => RouteTable::load(),
    };
    if sender.is_none() && recipient.is_none() && context.is_none() {
        print!("{}", routing::render_table(&table));
        return EXIT_OK;
    }
    match routing::render_routes(&table, sender, recipient, context) {
        Ok(text) => {
            println!("{}", text.trim_end());
            EXIT_OK
        }
        Err(e) => {
            eprintln!("acp-gateway: {e}");
            EXIT_INVALID
        }
    }
}

/// `bench translate`: the whole per-record path a translation takes, timed in one thread. The output
/// of each round is consumed (its length summed) so the optimiser cannot drop the work.
fn bench_translate(path: &Path, seconds: f64) -> u8 {
    let bytes = match read_input(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("acp-gateway: cannot read {e}");
            return EXIT_USAGE;
        }
    };
    if intake::read(&bytes).valid_record().is_none() {
        eprintln!("acp-gateway: {} is not a valid record; run validate first", path.display());
        return EXIT_INVALID;
    }
    let budget = std::time::Duration::from_secs_f64(seconds.max(0.1));
    let start = std::time::Instant::now();
    let (mut records, mut out_bytes) = (0u64, 0usize);
    while start.elapsed() < budget {
        let result = intake::read(&bytes);
        if let Some(record) = result.valid_record() {
            let bundle = render::fhir::bundle(record, render::fhir::BundleKind::Transaction);
            out_bytes += render::fhir::to_json(&bundle).len();
            records += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ours = records as f64 / elapsed;
    println!(
        "translate (parse -> validate -> FHIR JSON): {records} records in {elapsed:.2} s = {ours:.0} records/s ({} bytes of FHIR JSON per record)",
        out_bytes / records.max(1) as usize
    );
    // The peer: serde_json alone reading the same input and writing the same output, with no
    // mapping in between. No translation can be faster than this, so the ratio says how much of the
    // time is the gateway's own work.
    let output: serde_json::Value = {
        let record = intake::read(&bytes).valid_record().cloned().expect("checked above");
        let json = render::fhir::to_json(&render::fhir::bundle(&record, render::fhir::BundleKind::Transaction));
        serde_json::from_str(&json).expect("our FHIR JSON parses")
    };
    let start = std::time::Instant::now();
    let mut peer = 0u64;
    while start.elapsed() < budget {
        let input: serde_json::Value = serde_json::from_slice(&bytes).expect("parsed above");
        std::hint::black_box(&input);
        std::hint::black_box(serde_json::to_vec_pretty(&output).expect("a Value serialises"));
        peer += 1;
    }
    let peer = peer as f64 / start.elapsed().as_secs_f64();
    println!(
        "peer, serde_json alone (input parsed to a Value, output written pretty, no mapping): {peer:.0} records/s; the gateway runs at {:.0}% of it",
        100.0 * ours / peer
    );
    EXIT_OK
}
