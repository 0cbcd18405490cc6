module tenantry.dev/platform

go 1.26.7
