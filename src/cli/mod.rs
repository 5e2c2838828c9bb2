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
use crate::record::Bsn;
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
    },
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
        Command::Translate { file, to, bsn, out } => translate(&file, to, bsn.as_deref(), out.as_deref()),
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

fn translate(path: &Path, to: OutputFormat, bsn: Option<&str>, out: Option<&Path>) -> u8 {
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
    let rendered = match to {
        OutputFormat::Record => render::record_json::render(&record),
    };
    let written = match out {
        Some(p) => std::fs::write(p, rendered.as_bytes()).map_err(|e| format!("{}: {e}", p.display())),
        None => std::io::stdout().lock().write_all(rendered.as_bytes()).map_err(|e| e.to_string()),
    };
    match written {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("acp-gateway: cannot write {e}");
            EXIT_USAGE
        }
    }
}
