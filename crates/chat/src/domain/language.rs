//! The language of a message (ISO 639-1 where it has one), by `whatlang`.

use std::sync::LazyLock;

use whatlang::{Detector, Lang};

/// The languages we label (a chat message is short: choosing among fewer
/// languages makes the guess surer).
static DETECTOR: LazyLock<Detector> = LazyLock::new(|| {
    Detector::with_allowlist(vec![
        Lang::Eng,
        Lang::Spa,
        Lang::Fra,
        Lang::Deu,
        Lang::Ita,
        Lang::Por,
        Lang::Nld,
        Lang::Pol,
        Lang::Rus,
        Lang::Ukr,
        Lang::Jpn,
        Lang::Cmn,
        Lang::Kor,
        Lang::Ara,
        Lang::Hin,
        Lang::Tur,
        Lang::Swe,
    ])
});

/// The detected language code, when the detector is fairly sure.
pub fn detect(text: &str) -> Option<String> {
    let info = DETECTOR.detect(text)?;
    // whatlang rarely calls a short text "reliable"; a confident guess will do.
    if !info.is_reliable() && info.confidence() < 0.5 {
        return None;
    }
    let code = match info.lang() {
        whatlang::Lang::Eng => "en",
        whatlang::Lang::Spa => "es",
        whatlang::Lang::Fra => "fr",
        whatlang::Lang::Deu => "de",
        whatlang::Lang::Ita => "it",
        whatlang::Lang::Por => "pt",
        whatlang::Lang::Nld => "nl",
        whatlang::Lang::Pol => "pl",
        whatlang::Lang::Rus => "ru",
        whatlang::Lang::Ukr => "uk",
        whatlang::Lang::Jpn => "ja",
        whatlang::Lang::Cmn => "zh",
        whatlang::Lang::Kor => "ko",
        whatlang::Lang::Ara => "ar",
        whatlang::Lang::Hin => "hi",
        whatlang::Lang::Tur => "tr",
        whatlang::Lang::Swe => "sv",
        other => return Some(other.code().to_owned()),
    };
    Some(code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_languages_are_detected() {
        assert_eq!(
            detect("The quick brown fox jumps over the lazy dog and keeps running far away")
                .as_deref(),
            Some("en")
        );
        assert_eq!(
            detect("El rápido zorro marrón salta sobre el perro perezoso y sigue corriendo")
                .as_deref(),
            Some("es")
        );
        assert_eq!(
            detect(
                "Le renard brun rapide saute par-dessus le chien paresseux et continue de courir"
            )
            .as_deref(),
            Some("fr")
        );
        assert_eq!(
            detect(
                "Could you please explain how the weather usually changes during the spring months?"
            )
            .as_deref(),
            Some("en")
        );
        assert_eq!(detect("ok"), None);
    }
}
