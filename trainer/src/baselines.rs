//! Classic baselines the model has to beat, built on well-kept crates:
//! TF-IDF word 1–2-grams (linfa-preprocessing) and logistic regression
//! (linfa-logistic) for skin types, BM25 (bm25) for retrieval.

use anyhow::{Context, Result};
use bm25::{Embedder, EmbedderBuilder, Language, Scorer};
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use linfa_preprocessing::tf_idf_vectorization::TfIdfVectorizer;
use ndarray::{Array1, Array2, Axis};

/// A word or pair must occur in this many training texts to be a feature
/// (rarer ones cannot generalise and would only cost memory).
const MIN_DOCUMENTS: f32 = 2.0;

/// Per-label probabilities of the test texts from a TF-IDF + logistic
/// regression model fitted on the training texts.
pub fn tfidf_logistic(
    train_texts: &[String],
    train_targets: &[Vec<bool>],
    test_texts: &[String],
) -> Result<Vec<Vec<f32>>> {
    let documents = Array1::from(train_texts.to_vec());
    let vectorizer = TfIdfVectorizer::default()
        .n_gram_range(1, 2)
        .document_frequency(MIN_DOCUMENTS / train_texts.len().max(1) as f32, 1.0)
        .fit(&documents)
        .context("fitting the TF-IDF vocabulary")?;
    let dense = |texts: &[String]| -> Result<Array2<f64>> {
        let sparse = vectorizer
            .transform(&Array1::from(texts.to_vec()))
            .context("TF-IDF transform")?;
        let mut x = sparse.to_dense();
        for mut row in x.axis_iter_mut(Axis(0)) {
            let norm = row.dot(&row).sqrt();
            if norm > 0.0 {
                row /= norm;
            }
        }
        Ok(x)
    };
    logistic(dense(train_texts)?, train_targets, dense(test_texts)?)
}

/// One L2-penalised logistic regression per label (α = 1, as scikit-learn's
/// C = 1). A label with a single class in training predicts its rate.
pub fn logistic(
    train: Array2<f64>,
    targets: &[Vec<bool>],
    test: Array2<f64>,
) -> Result<Vec<Vec<f32>>> {
    let labels = targets.first().map_or(0, Vec::len);
    let mut columns = Vec::with_capacity(labels);
    for label in 0..labels {
        let y: Array1<bool> = targets.iter().map(|t| t[label]).collect();
        let positives = y.iter().filter(|&&v| v).count();
        if positives == 0 || positives == y.len() {
            let rate = positives as f32 / y.len().max(1) as f32;
            columns.push(vec![rate; test.nrows()]);
            continue;
        }
        let dataset = Dataset::new(train.clone(), y);
        let model = LogisticRegression::default()
            .alpha(1.0)
            .max_iterations(200)
            .fit(&dataset)
            .with_context(|| format!("logistic regression for label {label}"))?;
        // The positive class is `true`, whatever order linfa found them in.
        let p = model.predict_probabilities(&test);
        let flip = !model.labels().pos.class;
        columns.push(
            p.iter()
                .map(|&v| if flip { 1.0 - v as f32 } else { v as f32 })
                .collect(),
        );
    }
    Ok((0..test.nrows())
        .map(|i| columns.iter().map(|c| c[i]).collect())
        .collect())
}

/// Rows of `values` (row-major, `width` wide) as an f64 matrix, each scaled
/// to unit length.
pub fn unit_rows(values: &[f32], width: usize) -> Array2<f64> {
    let mut x = Array2::from_shape_fn((values.len() / width, width), |(i, j)| {
        values[i * width + j] as f64
    });
    for mut row in x.axis_iter_mut(Axis(0)) {
        let norm = row.dot(&row).sqrt();
        if norm > 0.0 {
            row /= norm;
        }
    }
    x
}

/// BM25 scores of every query against every document (English stemming
/// and stop words, parameters fitted to the documents).
pub fn bm25_scores(documents: &[String], queries: &[String]) -> Vec<Vec<f32>> {
    let corpus: Vec<&str> = documents.iter().map(String::as_str).collect();
    let embedder: Embedder =
        EmbedderBuilder::with_fit_to_corpus(Language::English, &corpus).build();
    let mut scorer = Scorer::<usize>::new();
    for (i, d) in documents.iter().enumerate() {
        scorer.upsert(&i, embedder.embed(d));
    }
    queries
        .iter()
        .map(|q| {
            let q = embedder.embed(q);
            (0..documents.len())
                .map(|i| scorer.score(&i, &q).unwrap_or(0.0))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tfidf_logistic_learns_a_word_that_decides_the_label() {
        let mut texts = Vec::new();
        let mut targets = Vec::new();
        for i in 0..40 {
            let oily = i % 2 == 0;
            texts.push(format!(
                "product {i} {} gel water",
                if oily { "mattifying" } else { "rich" }
            ));
            targets.push(vec![oily, true]);
        }
        let test = vec!["new mattifying gel".to_string(), "new rich gel".to_string()];
        let p = tfidf_logistic(&texts, &targets, &test).unwrap();
        assert!(p[0][0] > 0.5 && p[1][0] < 0.5, "{p:?}");
        assert_eq!(p[0][1], 1.0, "a label with one class predicts its rate");
    }

    #[test]
    fn bm25_ranks_the_matching_document_first() {
        let docs = vec![
            "hydrating moisturizer with ceramides".to_string(),
            "clarifying cleanser with salicylic acid".to_string(),
        ];
        let s = bm25_scores(&docs, &["salicylic cleanser".to_string()]);
        assert!(s[0][1] > s[0][0]);
    }
}
