module tenantry.dev/tenant-registry

go 1.26.7

replace tenantry.dev/gen => ../../gen

replace tenantry.dev/platform => ../platform
