//! Dutch identifiers that can only hold valid values: BSN (11-proof), AGB and URA (8 digits).
//!
//! Parsing happens once, at intake; a value of these types is valid by construction, so no later stage
//! re-checks or mis-renders an identifier.

use std::fmt;

use serde::Serialize;

/// Why an identifier was refused, phrased for the integrator who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("a BSN has 9 digits (8-digit numbers get a leading zero); got {0:?}")]
    BsnLength(String),
    #[error("BSN {0:?} fails the 11-proof (elfproef); check for a typing error")]
    BsnElevenProof(String),
    #[error("an AGB code has exactly 8 digits; got {0:?}")]
    Agb(String),
    #[error("a URA number has exactly 8 digits; got {0:?}")]
    Ura(String),
}

/// Burgerservicenummer: 9 digits passing the 11-proof (sum of d_i * (9..2) minus last digit, mod 11 = 0).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Bsn(String);

impl Bsn {
    pub fn parse(raw: &str) -> Result<Bsn, IdError> {
        let s = raw.trim();
        if !(s.len() == 8 || s.len() == 9) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::BsnLength(raw.to_owned()));
        }
        // Old BSNs are sometimes written with 8 digits; the leading zero is implied.
        let s = if s.len() == 8 { format!("0{s}") } else { s.to_owned() };
        let d: Vec<i64> = s.bytes().map(|b| i64::from(b - b'0')).collect();
        let sum: i64 = (0..8).map(|i| d[i] * (9 - i as i64)).sum::<i64>() - d[8];
        if sum % 11 != 0 || s == "000000000" {
            return Err(IdError::BsnElevenProof(raw.to_owned()));
        }
        Ok(Bsn(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Bsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn eight_digits(raw: &str) -> Option<String> {
    let s = raw.trim();
    (s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.to_owned())
}

/// AGB code (Algemeen GegevensBeheer): 8 digits, for care providers and organisations.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Agb(String);

impl Agb {
    pub fn parse(raw: &str) -> Result<Agb, IdError> {
        eight_digits(raw).map(Agb).ok_or_else(|| IdError::Agb(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// URA number (UZI-register abonneenummer) of a care organisation: 8 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Ura(String);

impl Ura {
    pub fn parse(raw: &str) -> Result<Ura, IdError> {
        eight_digits(raw).map(Ura).ok_or_else(|| IdError::Ura(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An identifier of another system (hospital number, etc.), kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Identifier {
    pub system: String,
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsn_eleven_proof() {
        // Test BSNs published for software testing.
        for ok in ["999911120", "999990019", "111222333", "123456782"] {
            assert!(Bsn::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(Bsn::parse("999911121"), Err(IdError::BsnElevenProof("999911121".into())));
        assert!(matches!(Bsn::parse("12345"), Err(IdError::BsnLength(_))));
        assert!(matches!(Bsn::parse("12345678a"), Err(IdError::BsnLength(_))));
        assert!(Bsn::parse("000000000").is_err());
        // Eight digits: the leading zero is implied.
        let eight = Bsn::parse("10000021").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(eight.as_str(), "010000021");
    }

    #[test]
    fn agb_and_ura_are_eight_digits() {
        assert!(Agb::parse("01234567").is_ok());
        assert!(Agb::parse("1234567").is_err());
        assert!(Ura::parse("90000123").is_ok());
        assert!(Ura::parse("9000012x").is_err());
    }
}
