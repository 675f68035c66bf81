//! Reads: `get`, `search` (by score) and `search_sorted` (by a payload
//! number), each on the searcher of the last commit.

use rpcsupport::{Item, SearchRequest, SearchResponse};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{Query, TermQuery};
use tantivy::schema::{IndexRecordOption, Value as _};
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};

use super::sorted::ByNumber;
use super::{run_error, Inner};
use crate::store::{check_window, query, Sort, StoreError};

impl Inner {
    pub(super) fn get(&self, id: &str) -> Result<Option<Item>, StoreError> {
        let searcher = self.reader.searcher();
        let query = TermQuery::new(
            Term::from_field_text(self.fields.id, id),
            IndexRecordOption::Basic,
        );
        // Upserts keep at most one live document per id.
        let hits = searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?;
        match hits.first() {
            Some(&(_, address)) => self.load(&searcher, address).map(Some),
            None => Ok(None),
        }
    }

    pub(super) fn search(&self, request: &SearchRequest) -> Result<SearchResponse, StoreError> {
        check_window(request)?;
        let query = self.parse_query(&request.query)?;
        let searcher = self.reader.searcher();
        let (total, hits) = if request.size == 0 {
            // TopDocs cannot collect zero hits; the caller only wants a count.
            let total = searcher.search(&query, &Count).map_err(run_error)?;
            (total, Vec::new())
        } else {
            let top = TopDocs::with_limit(request.size as usize)
                .and_offset(request.from as usize)
                .order_by_score();
            searcher.search(&query, &(Count, top)).map_err(run_error)?
        };
        let items = hits
            .into_iter()
            .map(|(_, address)| self.load(&searcher, address))
            .collect::<Result<_, _>>()?;
        Ok(SearchResponse {
            total: total as u64,
            items,
        })
    }

    /// [`ItemStore::search_sorted`]: as [`Inner::search`], ranked by a
    /// payload number ([`ByNumber`]) instead of the score.
    pub(super) fn search_sorted(
        &self,
        request: &SearchRequest,
        sort: &Sort,
    ) -> Result<SearchResponse, StoreError> {
        let window = check_window(request)?;
        let query = self.parse_query(&request.query)?;
        let searcher = self.reader.searcher();
        let top = ByNumber {
            column: format!("payload.{}", sort.field),
            descending: sort.descending,
            limit: window as usize,
        };
        let (total, hits) = searcher.search(&query, &(Count, top)).map_err(run_error)?;
        let items = hits
            .into_iter()
            .skip(request.from as usize)
            .map(|(_, address)| self.load(&searcher, address))
            .collect::<Result<_, _>>()?;
        Ok(SearchResponse {
            total: total as u64,
            items,
        })
    }

    /// Parses the query language of [`super::query`] (which also routes
    /// payload keys: `age:31` means `payload.age:31`) and builds tantivy's
    /// query from the tree.
    pub(super) fn parse_query(&self, text: &str) -> Result<Box<dyn Query>, StoreError> {
        let ast = query::parse(text)?;
        self.parser
            .build_query_from_user_input_ast(ast)
            .map_err(|e| StoreError::BadQuery(format!("query {text:?}: {e}")))
    }

    pub(super) fn load(
        &self,
        searcher: &Searcher,
        address: DocAddress,
    ) -> Result<Item, StoreError> {
        let doc: TantivyDocument = searcher.doc(address)?;
        let text = |field| doc.get_first(field).and_then(|v| v.as_str());
        let id = text(self.fields.id).unwrap_or_default().to_owned();
        let corrupt = |reason: &str| StoreError::Corrupt {
            id: id.clone(),
            reason: reason.to_owned(),
        };
        let stored = text(self.fields.item).ok_or_else(|| corrupt("no stored item"))?;
        let json: serde_json::Value =
            serde_json::from_str(stored).map_err(|e| corrupt(&e.to_string()))?;
        Item::from_json(&json).ok_or_else(|| corrupt("not an item"))
    }
}
