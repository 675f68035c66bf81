//! Hits sorted by a numeric payload key, for `search_sorted`.

use tantivy::{DocAddress, DocId};

/// Collects the first `limit` hits by a numeric payload key, items
/// without a number there last, ties in index order. Tantivy's own
/// `order_by_fast_field` needs one numeric type per field, but a JSON key's
/// column is i64 in one segment and f64 in the next, so every column is
/// read as f64 here. Keeps at most `2 * limit` hits per segment.
pub(super) struct ByNumber {
    /// The fast-field path, e.g. `payload.age`.
    pub(super) column: String,
    pub(super) descending: bool,
    pub(super) limit: usize,
}

/// A hit's rank: numbers first (negated when descending), then the rest.
type Rank = (bool, f64, DocAddress);

fn rank_order(a: &Rank, b: &Rank) -> std::cmp::Ordering {
    a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2))
}

pub(super) struct ByNumberSegment {
    columns: Vec<tantivy::columnar::Column<f64>>,
    segment: u32,
    descending: bool,
    limit: usize,
    hits: Vec<Rank>,
}

impl tantivy::collector::Collector for ByNumber {
    type Fruit = Vec<(f64, DocAddress)>;
    type Child = ByNumberSegment;

    fn for_segment(
        &self,
        segment: tantivy::SegmentOrdinal,
        reader: &tantivy::SegmentReader,
    ) -> tantivy::Result<ByNumberSegment> {
        let mut columns = Vec::new();
        for handle in reader.fast_fields().dynamic_column_handles(&self.column)? {
            let numbers = handle
                .open()?
                .coerce_numerical(tantivy::columnar::NumericalType::F64)
                .and_then(Option::<tantivy::columnar::Column<f64>>::from);
            columns.extend(numbers);
        }
        Ok(ByNumberSegment {
            columns,
            segment,
            descending: self.descending,
            limit: self.limit,
            hits: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, segments: Vec<Vec<Rank>>) -> tantivy::Result<Self::Fruit> {
        let mut hits: Vec<Rank> = segments.into_iter().flatten().collect();
        hits.sort_by(rank_order);
        hits.truncate(self.limit);
        Ok(hits.into_iter().map(|(_, n, at)| (n, at)).collect())
    }
}

impl tantivy::collector::SegmentCollector for ByNumberSegment {
    type Fruit = Vec<Rank>;

    fn collect(&mut self, doc: DocId, _: tantivy::Score) {
        let number = self.columns.iter().find_map(|c| c.first(doc));
        let rank = match number {
            Some(n) if self.descending => (false, -n, DocAddress::new(self.segment, doc)),
            Some(n) => (false, n, DocAddress::new(self.segment, doc)),
            None => (true, 0.0, DocAddress::new(self.segment, doc)),
        };
        self.hits.push(rank);
        if self.hits.len() >= 2 * self.limit.max(1) {
            self.hits.sort_by(rank_order);
            self.hits.truncate(self.limit);
        }
    }

    fn harvest(mut self) -> Vec<Rank> {
        self.hits.sort_by(rank_order);
        self.hits.truncate(self.limit);
        self.hits
    }
}
