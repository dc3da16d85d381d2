//! The page's question as a URL query string, so that every search is a
//! link that can be shared, bookmarked, and walked with back and forward.
//!
//! `?skin=Dry,Sensitive&type=Moisturizer&concern=acne&avoid=fragrance&min=20&max=60&rating=4&q=gentle&view=map`
//! Unknown or malformed parameters are ignored: a hand-edited link still
//! opens the page.

use milih_catalog::SKIN_TYPES;
use milih_rank::concerns::Concern;

/// Everything the filters and the search box hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UrlState {
    /// Indices into [`SKIN_TYPES`].
    pub skin_types: Vec<usize>,
    pub product_types: Vec<String>,
    /// Concern keys (see [`milih_rank::concerns::CONCERNS`]).
    pub concerns: Vec<String>,
    /// The avoid field as typed (comma-separated).
    pub avoid: String,
    pub min_price: String,
    pub max_price: String,
    pub min_rating: String,
    pub text: String,
    /// The product whose detail view is open.
    pub product: Option<usize>,
    /// How the results are shown.
    pub view: View,
}

/// The page's ways of showing the collection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum View {
    /// Ranked result cards.
    #[default]
    List,
    /// The embedding map, results highlighted.
    Map,
    /// Counts by type and brand, labeled and predicted.
    Overview,
}

impl View {
    pub const ALL: [View; 3] = [View::List, View::Map, View::Overview];

    /// The `view=` value in links (empty for the default).
    pub fn key(self) -> &'static str {
        match self {
            View::List => "",
            View::Map => "map",
            View::Overview => "overview",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            View::List => "Results",
            View::Map => "Map",
            View::Overview => "Collection",
        }
    }

    fn from_key(key: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|v| !v.key().is_empty() && v.key().eq_ignore_ascii_case(key.trim()))
            .unwrap_or_default()
    }
}

/// Longest value read from a link (longer ones are cut).
const MAX_VALUE_CHARS: usize = 2_000;

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|v| !v.is_empty())
}

impl UrlState {
    /// Parses a query string, with or without its leading `?`.
    pub fn from_query(query: &str) -> Self {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut state = Self::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let value: String = value.chars().take(MAX_VALUE_CHARS).collect();
            match key.as_ref() {
                "skin" => {
                    state.skin_types = list(&value)
                        .filter_map(|s| SKIN_TYPES.iter().position(|t| t.eq_ignore_ascii_case(s)))
                        .collect();
                    state.skin_types.dedup();
                }
                "type" => state.product_types = list(&value).map(str::to_owned).collect(),
                "concern" => {
                    state.concerns = list(&value)
                        .filter(|k| Concern::by_key(k).is_some())
                        .map(str::to_owned)
                        .collect()
                }
                "avoid" => state.avoid = value,
                "min" => state.min_price = number(&value),
                "max" => state.max_price = number(&value),
                "rating" => state.min_rating = number(&value),
                "q" => state.text = value,
                "product" => state.product = value.trim().parse().ok(),
                "view" => state.view = View::from_key(&value),
                _ => {}
            }
        }
        state
    }

    /// The query string, with a leading `?`, or empty when nothing is set.
    pub fn to_query(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        let skins: Vec<&str> = self
            .skin_types
            .iter()
            .filter_map(|&i| SKIN_TYPES.get(i).copied())
            .collect();
        let pairs = [
            ("skin", skins.join(",")),
            ("type", self.product_types.join(",")),
            ("concern", self.concerns.join(",")),
            ("avoid", self.avoid.trim().to_owned()),
            ("min", self.min_price.trim().to_owned()),
            ("max", self.max_price.trim().to_owned()),
            ("rating", self.min_rating.trim().to_owned()),
            ("q", self.text.clone()),
            (
                "product",
                self.product.map(|p| p.to_string()).unwrap_or_default(),
            ),
            ("view", self.view.key().to_owned()),
        ];
        let mut any = false;
        for (key, value) in pairs {
            if !value.trim().is_empty() {
                out.append_pair(key, &value);
                any = true;
            }
        }
        if any {
            format!("?{}", out.finish())
        } else {
            String::new()
        }
    }
}

/// The value if it is a non-negative number, else empty.
fn number(value: &str) -> String {
    value
        .trim()
        .parse::<f32>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|_| value.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_field() {
        let state = UrlState {
            skin_types: vec![1, 4],
            product_types: vec!["Moisturizer".into(), "Face Mask".into()],
            concerns: vec!["acne".into(), "dark-spots".into()],
            avoid: "fragrance, alcohol denat.".into(),
            min_price: "20".into(),
            max_price: "60.5".into(),
            min_rating: "4".into(),
            text: "gentle & calm? 敏感肌 #1".into(),
            product: Some(17),
            view: View::Map,
        };
        let query = state.to_query();
        assert!(
            query.starts_with("?skin=Dry%2CSensitive&type=Moisturizer%2CFace+Mask"),
            "{query}"
        );
        assert_eq!(UrlState::from_query(&query), state);
        assert_eq!(UrlState::default().to_query(), "");
    }

    #[test]
    fn hand_edited_links_still_open() {
        let state = UrlState::from_query(
            "skin=dry,NOPE,Dry&concern=acne,unknown&min=abc&max=-3&rating=4.5&zzz=1&q=%ZZ",
        );
        assert_eq!(state.skin_types, [1]);
        assert_eq!(state.concerns, ["acne"]);
        assert_eq!(state.min_price, "");
        assert_eq!(state.max_price, "");
        assert_eq!(state.min_rating, "4.5");
        assert_eq!(state.text, "%ZZ");
        assert_eq!(UrlState::from_query("product=x").product, None);
        assert_eq!(UrlState::from_query("view=Overview").view, View::Overview);
        assert_eq!(UrlState::from_query("view=list").view, View::List);
        assert_eq!(UrlState::from_query("view=<b>").view, View::List);
        assert_eq!(UrlState::from_query(""), UrlState::default());
        let huge = format!("q={}", "a".repeat(100_000));
        assert_eq!(UrlState::from_query(&huge).text.len(), MAX_VALUE_CHARS);
    }
}
