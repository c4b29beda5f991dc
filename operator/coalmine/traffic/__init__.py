"""Traffic routers: turn a canary weight into Services, routes and replica counts."""
