module stream-processing-gke/tools/httpload

go 1.24
