//! Fitting message content into WeCom's limits, which count UTF-8 bytes, not characters: a
//! Chinese character takes 3 bytes, so 4096 bytes hold at most 1365 of them.

use super::rules::Language;

/// The maximum size of `markdown.content`, in UTF-8 bytes.
pub const MARKDOWN_MAX_BYTES: usize = 4096;
/// The maximum size of `text.content`, in UTF-8 bytes.
pub const TEXT_MAX_BYTES: usize = 2048;

/// Returns the longest prefix of `text` that is at most `max_bytes` long and ends on a character
/// boundary.
pub fn truncate_to_bytes(text: &str, max_bytes: usize) -> &str {
    &text[..text.floor_char_boundary(max_bytes)]
}

/// Returns `text` cut to at most `max_bytes`, ending with `…` when anything was cut.
pub fn shorten(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let ellipsis = "…";
    let kept = truncate_to_bytes(text, max_bytes.saturating_sub(ellipsis.len()));
    format!("{kept}{ellipsis}")
}

/// Returns the line that ends a list cut short, e.g. `……另有 12 项未列出`.
pub fn omitted_note(language: Language, omitted: usize) -> String {
    match language {
        Language::ZhCn => format!("……另有 {omitted} 项未列出"),
        Language::En => format!("... and {omitted} more"),
    }
}

/// Joins `header`, as many `items` as fit, a note of how many were left out, and `footer` into
/// one text of at most `max_bytes`, one item per line.
///
/// Items are kept whole and in order. When even the header and footer do not fit, the result is
/// cut at a character boundary so that the limit still holds.
pub fn fit_list(
    header: &str,
    items: &[String],
    footer: &str,
    language: Language,
    max_bytes: usize,
) -> String {
    // Each item takes its own length plus a newline.
    let all_items: usize = items.iter().map(|item| item.len() + 1).sum();
    let fixed = header.len() + footer.len();
    let mut body = String::new();
    if fixed + all_items <= max_bytes {
        for item in items {
            body.push_str(item);
            body.push('\n');
        }
    } else {
        // The note for all items is the longest the note can get, so reserving it is enough.
        let reserved = omitted_note(language, items.len()).len() + 1;
        let budget = max_bytes.saturating_sub(fixed + reserved);
        let mut kept = 0;
        for item in items {
            if body.len() + item.len() + 1 > budget {
                break;
            }
            body.push_str(item);
            body.push('\n');
            kept += 1;
        }
        body.push_str(&omitted_note(language, items.len() - kept));
        body.push('\n');
    }
    let joined = format!("{header}{body}{footer}");
    truncate_to_bytes(&joined, max_bytes).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_text_is_cut_on_a_character_boundary() {
        let text = format!("{}份", "备".repeat(1365));
        assert_eq!(text.len(), 4098);
        for limit in [4095, 4096, 4097] {
            let cut = truncate_to_bytes(&text, limit);
            assert_eq!(cut.len(), 4095, "limit {limit}");
            assert!(cut.chars().all(|c| c == '备'));
        }
        assert_eq!(truncate_to_bytes(&text, 4094).len(), 4092);
        assert_eq!(truncate_to_bytes(&text, 10_000), text);
    }

    #[test]
    fn shorten_marks_the_cut() {
        assert_eq!(shorten("abc", 3), "abc");
        let cut = shorten(&"备".repeat(10), 10);
        assert!(cut.len() <= 10);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn list_that_fits_is_kept_whole() {
        let items: Vec<String> = (0..3).map(|i| format!("item {i}")).collect();
        let text = fit_list("head\n", &items, "foot", Language::En, 100);
        assert_eq!(text, "head\nitem 0\nitem 1\nitem 2\nfoot");
    }

    #[test]
    fn long_list_ends_with_the_number_left_out() {
        let items: Vec<String> = (0..300)
            .map(|i| format!("表 db.table_{i:03} 导出失败"))
            .collect();
        let text = fit_list(
            "标题\n",
            &items,
            "下一步\n",
            Language::ZhCn,
            MARKDOWN_MAX_BYTES,
        );
        assert!(text.len() <= MARKDOWN_MAX_BYTES);
        let kept = text.lines().filter(|line| line.starts_with("表 ")).count();
        assert!(kept > 0);
        assert!(kept < 300);
        assert!(
            text.contains(&format!("……另有 {} 项未列出", 300 - kept)),
            "{text}"
        );
        assert!(text.ends_with("下一步\n"));
    }

    #[test]
    fn oversized_header_is_still_cut_to_the_limit() {
        let header = "备".repeat(2000);
        let text = fit_list(&header, &[], "", Language::ZhCn, MARKDOWN_MAX_BYTES);
        assert!(text.len() <= MARKDOWN_MAX_BYTES);
    }
}
