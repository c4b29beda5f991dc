module coalmine.dev/testhttp

go 1.22
