//! The live Alpaca REST client (issue 3). STUB.

use crate::model::BrokerView;

/// The Alpaca client.
#[derive(Debug, Clone)]
pub struct AlpacaClient {}

impl AlpacaClient {
    /// Reads everything an audit needs.
    pub async fn view(&self) -> BrokerView {
        BrokerView::unavailable("the Alpaca client is not implemented yet")
    }
}
