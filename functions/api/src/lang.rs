//! The language of error messages: Simplified Chinese unless `Accept-Language` prefers English.

use http::HeaderMap;

/// A language that error messages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    /// Picks the language from `Accept-Language`: English when an `en` range has a higher
    /// quality than every `zh` range, otherwise Chinese. Ties keep the header's order.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let Some(value) = headers
            .get(http::header::ACCEPT_LANGUAGE)
            .and_then(|value| value.to_str().ok())
        else {
            return Lang::Zh;
        };
        let mut best: Option<(f32, Lang)> = None;
        for range in value.split(',') {
            let mut parts = range.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|part| part.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = if tag == "en" || tag.starts_with("en-") {
                Lang::En
            } else if tag == "zh" || tag.starts_with("zh-") {
                Lang::Zh
            } else {
                continue;
            };
            if quality > 0.0 && best.is_none_or(|(best_quality, _)| quality > best_quality) {
                best = Some((quality, lang));
            }
        }
        best.map_or(Lang::Zh, |(_, lang)| lang)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(value: &str) -> Lang {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::ACCEPT_LANGUAGE, value.parse().unwrap());
        Lang::from_headers(&headers)
    }

    #[test]
    fn missing_header_means_chinese() {
        assert_eq!(Lang::from_headers(&HeaderMap::new()), Lang::Zh);
    }

    #[test]
    fn english_first_means_english() {
        assert_eq!(lang("en-US,en;q=0.9"), Lang::En);
        assert_eq!(lang("en;q=0.8, zh-CN;q=0.5"), Lang::En);
    }

    #[test]
    fn chinese_preferred_over_english() {
        assert_eq!(lang("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh);
        assert_eq!(lang("en;q=0.3, zh;q=0.7"), Lang::Zh);
    }

    #[test]
    fn other_languages_fall_back_to_chinese() {
        assert_eq!(lang("fr-FR, de"), Lang::Zh);
        assert_eq!(lang("en;q=0"), Lang::Zh);
    }
}
