module cnsim/harness

go 1.21
