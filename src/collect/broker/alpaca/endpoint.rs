//! The Alpaca endpoints the client calls: one name per endpoint, used in error messages,
//! source names (`broker:<name>`) and per-endpoint metrics.

use std::fmt;

use reqwest::Method;

/// One Alpaca Trading API endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// `GET /v2/account`.
    Account,
    /// `GET /v2/positions`.
    Positions,
    /// `GET /v2/positions/{symbol}`.
    Position,
    /// `GET /v2/orders`.
    Orders,
    /// `GET /v2/orders/{id}`.
    Order,
    /// `GET /v2/account/activities/FILL`.
    Fills,
    /// `GET /v2/clock`.
    Clock,
    /// `GET /v2/account/configurations`.
    Configurations,
    /// `DELETE /v2/positions/{symbol}`.
    ClosePosition,
    /// `DELETE /v2/positions`.
    CloseAllPositions,
    /// `DELETE /v2/orders/{id}`.
    CancelOrder,
    /// `DELETE /v2/orders`.
    CancelAllOrders,
    /// `PATCH /v2/account/configurations`.
    PatchConfigurations,
}

impl Endpoint {
    /// Every endpoint, in a stable order.
    pub const ALL: [Self; 13] = [
        Self::Account,
        Self::Positions,
        Self::Position,
        Self::Orders,
        Self::Order,
        Self::Fills,
        Self::Clock,
        Self::Configurations,
        Self::ClosePosition,
        Self::CloseAllPositions,
        Self::CancelOrder,
        Self::CancelAllOrders,
        Self::PatchConfigurations,
    ];

    /// The short name: `positions`, `close_position`, ... The five reads of an audit use the
    /// same names as the replay broker, so a source is `broker:positions` either way.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Positions => "positions",
            Self::Position => "position",
            Self::Orders => "orders",
            Self::Order => "order",
            Self::Fills => "fills",
            Self::Clock => "clock",
            Self::Configurations => "configurations",
            Self::ClosePosition => "close_position",
            Self::CloseAllPositions => "close_all_positions",
            Self::CancelOrder => "cancel_order",
            Self::CancelAllOrders => "cancel_all_orders",
            Self::PatchConfigurations => "patch_configurations",
        }
    }

    /// The HTTP method.
    #[must_use]
    pub fn method(self) -> Method {
        match self {
            Self::Account
            | Self::Positions
            | Self::Position
            | Self::Orders
            | Self::Order
            | Self::Fills
            | Self::Clock
            | Self::Configurations => Method::GET,
            Self::ClosePosition | Self::CloseAllPositions | Self::CancelOrder | Self::CancelAllOrders => Method::DELETE,
            Self::PatchConfigurations => Method::PATCH,
        }
    }

    /// The route, with placeholders: `GET /v2/positions/{symbol}`.
    #[must_use]
    pub fn route(self) -> &'static str {
        match self {
            Self::Account => "GET /v2/account",
            Self::Positions => "GET /v2/positions",
            Self::Position => "GET /v2/positions/{symbol}",
            Self::Orders => "GET /v2/orders",
            Self::Order => "GET /v2/orders/{id}",
            Self::Fills => "GET /v2/account/activities/FILL",
            Self::Clock => "GET /v2/clock",
            Self::Configurations => "GET /v2/account/configurations",
            Self::ClosePosition => "DELETE /v2/positions/{symbol}",
            Self::CloseAllPositions => "DELETE /v2/positions",
            Self::CancelOrder => "DELETE /v2/orders/{id}",
            Self::CancelAllOrders => "DELETE /v2/orders",
            Self::PatchConfigurations => "PATCH /v2/account/configurations",
        }
    }

    /// The source name in a snapshot: `broker:positions`.
    #[must_use]
    pub fn source(self) -> String {
        format!("broker:{}", self.name())
    }

    /// True for reads, which may be retried; writes never are.
    #[must_use]
    pub fn is_read(self) -> bool {
        self.method() == Method::GET
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.route())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_routes_match_methods() {
        let names: std::collections::BTreeSet<_> = Endpoint::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(names.len(), Endpoint::ALL.len());
        for e in Endpoint::ALL {
            assert!(e.route().starts_with(e.method().as_str()), "{e:?}");
            assert_eq!(e.is_read(), e.route().starts_with("GET "));
        }
        assert_eq!(Endpoint::Configurations.source(), "broker:configurations");
    }
}
