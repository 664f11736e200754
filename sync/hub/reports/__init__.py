"""The back office's Excel report of the whole chain, from the hub's tables
(`loyalty-hub report export`): KPIs, members, cards, sales and their lines,
statistics, redemptions, gift cards and RFM segments, with charts."""
